/* SPDX-License-Identifier: Apache-2.0 */
/*
 * holtwinters: additive Holt-Winters forecasting of one series (double
 * precision), with prediction intervals and time to a threshold.
 *
 * Model. Level l, trend b and, with a period m, m seasonal terms s, in the
 * error-correction form of the classical additive method, i.e. ETS(A,A,A)
 * (Hyndman and Athanasopoulos, "Forecasting: principles and practice",
 * 2nd ed., sections 7.3 and 7.7):
 *
 *   e = x - (l + b + s[t mod m])
 *   l += b + alpha e;  b += alpha beta e;  s[t mod m] += gamma e
 *
 * alpha, beta, gamma are the smoothing weights of the component form
 * (beta is the trend weight beta* of that book). No season when m is 0.
 *
 * Fitting (holtwinters__fit()). The initial state comes from the first
 * seasons (up to 4; level and trend from their means, seasonal terms the
 * detrended averages, summing to 0) or, without a season, from a
 * least-squares line through the first max(10, n / 10) samples. Each
 * smoothing weight passed as 0 is then chosen by a grid search minimising
 * the one-step squared error over all n samples: alpha in 9 values
 * 0.01..0.95, beta and gamma in 6 values 0.005..0.4 (gamma <= 1 - alpha),
 * then two multiplicative refinements around the best; about 370 passes,
 * run 4 weight sets per pass over the data: 10k samples in ~5-10 ms.
 *
 * Intervals. sigma^2 is the mean squared one-step error (over the fit, then
 * a running mean over the last ~1000 updates). The h-step variance is the
 * analytical one of ETS(A,A,A) (op. cit., Table 7.8), with B = alpha beta
 * and k = floor((h - 1) / m) (k = 0 without season):
 *
 *   sigma_h^2 = sigma^2 [1 + (h-1) (alpha^2 + alpha B h + B^2 h (2h-1) / 6)
 *                        + gamma k (2 alpha + gamma + B m (k + 1))]
 *
 * and the interval is mean -+ z sigma_h with z the normal quantile of the
 * level: exact for the model with Gaussian errors, an approximation for
 * fitted weights.
 *
 * Missing samples: a NaN (or infinite) x advances the clock without learning
 * (the level moves on by the trend, the season by one slot), so the seasonal
 * phase stays aligned with time. Used without holtwinters__fit(), the object
 * collects the first max(2 m, 10) samples and fits itself on them.
 * Not thread safe.
 */
#ifndef NOVAMON_ANALYTICS_HOLTWINTERS_H
#define NOVAMON_ANALYTICS_HOLTWINTERS_H

#include <stddef.h>
#include <stdint.h>

struct holtwinters_params {
	uint32_t period; /* samples per season; 0: no season; else 2..2^24 */
	double alpha, beta, gamma; /* in (0, 1]; 0: fitted by holtwinters__fit() */
};

struct holtwinters;

/* p NULL: no season, all weights fitted. NULL with errno EINVAL (parameter
 * out of range) or ENOMEM. */
struct holtwinters *holtwinters__new(const struct holtwinters_params *p);
void holtwinters__free(struct holtwinters *h);

/*
 * Initialises the state from x[0..n), fits the weights given as 0 and runs
 * the model over x, so that the state is the one after x[n - 1]. Replaces
 * any earlier state. 0, or -EINVAL: n below max(2 m, 3), or one of the
 * first seasons without a finite sample (without season: fewer than 2
 * finite samples in the initial line).
 */
int holtwinters__fit(struct holtwinters *h, const double *x, size_t n);

/* Takes the next sample (NaN: none, see above). */
void holtwinters__update(struct holtwinters *h, double x);

/*
 * Mean forecast `steps` (>= 1) samples after the last one, and its
 * two-sided prediction interval [lo, hi] at confidence `level` in (0, 1).
 * Any output may be NULL. 0, -EINVAL (steps 0, level out of range) or
 * -ENODATA (not fitted yet).
 */
int holtwinters__forecast(const struct holtwinters *h, size_t steps, double level, double *mean,
			  double *lo, double *hi);

/*
 * First step (1..horizon) at which the mean forecast reaches threshold,
 * coming from the side of the current level: >= threshold when the level
 * is below it, <= otherwise. -1 when not within horizon or not fitted yet.
 * O(m), not O(horizon).
 */
long holtwinters__time_to_threshold(const struct holtwinters *h, double threshold, size_t horizon);

#endif /* NOVAMON_ANALYTICS_HOLTWINTERS_H */
