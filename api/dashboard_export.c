/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dashboard_export: PNG/PDF rendering with cairo and the JSON export (see
 * dashboard_export.h). Plain drawing, no charting library: every panel is a
 * frame with its title, then the type's drawing scaled to the panel.
 */
#include <cairo-pdf.h>
#include <cairo.h>
#include <errno.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dashboard_export.h"

#define DX_MARGIN 12.0
#define DX_GAP 8.0
#define DX_PANEL_TITLE 18.0
#define DX_FONT "DejaVu Sans"
#define DX_MAX_SERIES 16 /* drawn per chart; the rest is summed up in a note */
#define DX_MAX_CELLS 4096

struct dx_rgb {
	double r, g, b;
};

static const struct dx_rgb dx_palette[] = {
	{ 0.45, 0.70, 0.29 }, { 0.95, 0.80, 0.05 }, { 0.43, 0.82, 0.92 }, { 0.94, 0.51, 0.27 },
	{ 0.20, 0.47, 0.82 }, { 0.86, 0.33, 0.35 }, { 0.64, 0.45, 0.82 }, { 0.31, 0.71, 0.63 },
};

static const struct {
	const char *name;
	struct dx_rgb c;
} dx_named[] = {
	{ "green", { 0.20, 0.65, 0.28 } },  { "yellow", { 0.93, 0.80, 0.10 } },
	{ "orange", { 0.96, 0.55, 0.10 } }, { "red", { 0.85, 0.18, 0.18 } },
	{ "blue", { 0.20, 0.45, 0.85 } },   { "purple", { 0.55, 0.30, 0.75 } },
	{ "grey", { 0.55, 0.55, 0.55 } },   { "black", { 0, 0, 0 } },
	{ "white", { 1, 1, 1 } },
};

static struct dx_rgb dx_color(const char *s)
{
	struct dx_rgb c = { 0.5, 0.5, 0.5 };
	unsigned int r, g, b;
	size_t i;

	for (i = 0; s && i < sizeof(dx_named) / sizeof(dx_named[0]); i++)
		if (!strcmp(dx_named[i].name, s))
			return dx_named[i].c;
	if (s && strlen(s) == 7 && sscanf(s, "#%02x%02x%02x", &r, &g, &b) == 3)
		return (struct dx_rgb){ r / 255.0, g / 255.0, b / 255.0 };
	if (s && strlen(s) == 4 && sscanf(s, "#%1x%1x%1x", &r, &g, &b) == 3)
		return (struct dx_rgb){ r * 17 / 255.0, g * 17 / 255.0, b * 17 / 255.0 };
	return c;
}

static void dx_set(cairo_t *cr, struct dx_rgb c)
{
	cairo_set_source_rgb(cr, c.r, c.g, c.b);
}

/* The colour of the highest threshold v reaches; def when none. */
static struct dx_rgb dx_threshold_color(const json_t *w, double v, struct dx_rgb def)
{
	const json_t *t;
	size_t i;

	if (isnan(v))
		return def;
	json_array_foreach(json_object_get(w, "thresholds"), i, t)
	{
		if (v >= json_number_value(json_object_get(t, "value")))
			def = dx_color(json_string_value(json_object_get(t, "color")));
	}
	return def;
}

/* ------------------------------------------------------------------ */
/* Values and text */

static double dx_opt_num(const json_t *w, const char *name, double def)
{
	const json_t *v = json_object_get(json_object_get(w, "options"), name);

	return json_is_number(v) ? json_number_value(v) : def;
}

static const char *dx_opt_str(const json_t *w, const char *name, const char *def)
{
	const json_t *v = json_object_get(json_object_get(w, "options"), name);

	return json_is_string(v) ? json_string_value(v) : def;
}

/* v in unit, short: "1.5 MiB", "42 %", "3.2 ms", "12 exits/s". */
static void dx_format(double v, const char *unit, int decimals, char *buf, size_t len)
{
	static const char *const bin[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi" };
	const char *u = unit ? unit : "";
	int i = 0;

	if (isnan(v)) {
		snprintf(buf, len, "-");
		return;
	}
	if (decimals < 0)
		decimals = 3;
	if (!strcmp(u, "percentunit")) {
		snprintf(buf, len, "%.*f %%", decimals > 2 ? 2 : decimals, v * 100);
	} else if (!strcmp(u, "percent")) {
		snprintf(buf, len, "%.*f %%", decimals > 2 ? 2 : decimals, v);
	} else if (!strncmp(u, "bytes", 5)) {
		while (fabs(v) >= 1024 && i < 5) {
			v /= 1024;
			i++;
		}
		snprintf(buf, len, "%.*g %sB%s", decimals, v, bin[i], u + 5);
	} else if (!strcmp(u, "seconds") && v != 0 && fabs(v) < 1) {
		if (fabs(v) >= 1e-3)
			snprintf(buf, len, "%.*g ms", decimals, v * 1e3);
		else
			snprintf(buf, len, "%.*g us", decimals, v * 1e6);
	} else {
		snprintf(buf, len, "%.*g%s%s", decimals, v, u[0] ? " " : "", u);
	}
}

static void dx_font(cairo_t *cr, double size, bool bold)
{
	cairo_select_font_face(cr, DX_FONT, CAIRO_FONT_SLANT_NORMAL,
			       bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
}

/* Text at x, y (baseline), clipped to max_w by cutting characters. align: 0 left, 1 right, 2 centre. */
static void dx_text(cairo_t *cr, double x, double y, double max_w, int align, const char *s)
{
	cairo_text_extents_t ext;
	char buf[256];
	size_t n;

	snprintf(buf, sizeof(buf), "%s", s);
	n = strlen(buf);
	for (;;) {
		cairo_text_extents(cr, buf, &ext);
		if (ext.x_advance <= max_w || n <= 1)
			break;
		/* cut back to a UTF-8 character boundary */
		do
			n--;
		while (n > 1 && ((unsigned char)buf[n] & 0xc0) == 0x80);
		buf[n] = '\0';
	}
	if (align == 1)
		x -= ext.x_advance;
	else if (align == 2)
		x -= ext.x_advance / 2;
	cairo_move_to(cr, x, y);
	cairo_show_text(cr, buf);
}

/* A series' labels as {a="1",b="2"} (no __name__ first). */
static void dx_labels(const struct promql_series *s, char *buf, size_t len)
{
	size_t i, o = 0;
	int n;

	n = snprintf(buf, len, "{");
	o = n > 0 ? (size_t)n : 0;
	for (i = 0; i < s->nlabels && o < len; i++) {
		n = snprintf(buf + o, len - o, "%s%s=\"%s\"", o > 1 ? "," : "", s->labels[i].name,
			     s->labels[i].value);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	if (o < len)
		snprintf(buf + o, len - o, "}");
}

/* The value of label name in s, or NULL. */
static const char *dx_label(const struct promql_series *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nlabels; i++)
		if (!strcmp(s->labels[i].name, name))
			return s->labels[i].value;
	return NULL;
}

/* A short legend name: the values of the labels, "a/b", or the braces form. */
static void dx_legend(const struct promql_series *s, char *buf, size_t len)
{
	size_t i, o = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < s->nlabels && o < len; i++) {
		if (!strcmp(s->labels[i].name, "__name__") && s->nlabels > 1)
			continue;
		n = snprintf(buf + o, len - o, "%s%s", o ? "/" : "", s->labels[i].value);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	if (!buf[0])
		snprintf(buf, len, "value");
}

static double dx_last(const struct promql_series *s)
{
	return s->n ? s->v[s->n - 1] : NAN;
}

/* reduce (last, mean, min, max, sum) over the points of s. */
static double dx_reduce(const struct promql_series *s, const char *how)
{
	double acc = NAN;
	size_t i, n = 0;

	if (!strcmp(how, "last"))
		return dx_last(s);
	for (i = 0; i < s->n; i++) {
		double v = s->v[i];

		if (isnan(v))
			continue;
		if (!n++)
			acc = v;
		else if (!strcmp(how, "min"))
			acc = fmin(acc, v);
		else if (!strcmp(how, "max"))
			acc = fmax(acc, v);
		else
			acc += v;
	}
	if (n && !strcmp(how, "mean"))
		acc /= (double)n;
	return acc;
}

/* ------------------------------------------------------------------ */
/* Panels */

struct dx_box {
	double x, y, w, h;
};

struct dx_ctx {
	cairo_t *cr;
	const struct dashboard_export_opts *o;
};

static void dx_note(cairo_t *cr, struct dx_box b, struct dx_rgb c, const char *msg)
{
	dx_set(cr, c);
	dx_font(cr, 11, false);
	dx_text(cr, b.x + 4, b.y + b.h / 2, b.w - 8, 0, msg);
}

/* "HH:MM:SS" (or "MM-DD HH:MM" for ranges over a day) of t_ms in UTC. */
static void dx_time(int64_t t_ms, int64_t range_ms, char *buf, size_t len)
{
	time_t t = (time_t)(t_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, range_ms > 86400000 ? "%m-%d %H:%M" : "%H:%M:%S", &tm);
}

/* Min and max over every point of the drawn series; stacked: of the running sums. */
static void dx_extent(const struct promql_result *r, size_t nser, const struct dx_ctx *x,
		      bool stacked, double *lo, double *hi)
{
	size_t i, j;

	*lo = 0;
	*hi = 0;
	if (stacked) {
		size_t ncell = (size_t)((x->o->end_ms - x->o->start_ms) / x->o->step_ms) + 1;
		double *sum = calloc(ncell, sizeof(*sum));

		for (i = 0; sum && i < nser; i++)
			for (j = 0; j < r->series[i].n; j++) {
				int64_t k = (r->series[i].t[j] - x->o->start_ms) / x->o->step_ms;

				if (k >= 0 && (size_t)k < ncell && !isnan(r->series[i].v[j]))
					sum[k] += r->series[i].v[j];
			}
		for (j = 0; sum && j < ncell; j++) {
			*lo = fmin(*lo, sum[j]);
			*hi = fmax(*hi, sum[j]);
		}
		free(sum);
		return;
	}
	for (i = 0; i < nser; i++)
		for (j = 0; j < r->series[i].n; j++)
			if (isfinite(r->series[i].v[j])) {
				*lo = fmin(*lo, r->series[i].v[j]);
				*hi = fmax(*hi, r->series[i].v[j]);
			}
}

/* Axes with three labels each; returns the plot area inside them. */
static struct dx_box dx_axes(struct dx_ctx *x, struct dx_box b, double lo, double hi,
			     const json_t *w)
{
	const char *unit = json_string_value(json_object_get(w, "unit"));
	struct dx_box p = { b.x + 76, b.y + 4, b.w - 84, b.h - 22 };
	static const int align[3] = { 0, 2, 1 };
	cairo_t *cr = x->cr;
	char buf[64];
	int i;

	if (p.w < 20 || p.h < 20)
		return p;
	cairo_set_line_width(cr, 1);
	cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
	cairo_rectangle(cr, p.x, p.y, p.w, p.h);
	cairo_stroke(cr);
	dx_font(cr, 9, false);
	for (i = 0; i <= 2; i++) {
		double v = lo + (hi - lo) * i / 2, y = p.y + p.h - p.h * i / 2;
		int64_t t = x->o->start_ms + (x->o->end_ms - x->o->start_ms) * i / 2;

		cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
		dx_format(v, unit, 3, buf, sizeof(buf));
		dx_text(cr, p.x - 4, y + 3, 72, 1, buf);
		dx_time(t, x->o->end_ms - x->o->start_ms, buf, sizeof(buf));
		/* time labels: left-, centre- and right-aligned under the plot */
		dx_text(cr, p.x + p.w * i / 2, p.y + p.h + 13, p.w / 2, align[i], buf);
		if (i == 1) {
			cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
			cairo_move_to(cr, p.x, y);
			cairo_line_to(cr, p.x + p.w, y);
			cairo_stroke(cr);
		}
	}
	return p;
}

static double dx_px_x(const struct dx_ctx *x, struct dx_box p, int64_t t)
{
	double span = (double)(x->o->end_ms - x->o->start_ms);

	return p.x + (span > 0 ? p.w * (double)(t - x->o->start_ms) / span : p.w);
}

static double dx_px_y(struct dx_box p, double lo, double hi, double v)
{
	return p.y + p.h - (hi > lo ? p.h * (v - lo) / (hi - lo) : 0);
}

/* Threshold lines across the plot. */
static void dx_threshold_lines(cairo_t *cr, struct dx_box p, double lo, double hi, const json_t *w)
{
	static const double dash[] = { 4, 3 };
	const json_t *t;
	size_t i;

	cairo_set_dash(cr, dash, 2, 0);
	json_array_foreach(json_object_get(w, "thresholds"), i, t)
	{
		double v = json_number_value(json_object_get(t, "value"));

		if (v <= lo || v >= hi)
			continue;
		dx_set(cr, dx_color(json_string_value(json_object_get(t, "color"))));
		cairo_move_to(cr, p.x, dx_px_y(p, lo, hi, v));
		cairo_line_to(cr, p.x + p.w, dx_px_y(p, lo, hi, v));
		cairo_stroke(cr);
	}
	cairo_set_dash(cr, NULL, 0, 0);
}

/* line and area (stacked: each series on top of the ones before). */
static void dx_chart(struct dx_ctx *x, struct dx_box b, const json_t *w,
		     const struct promql_result *r, bool area)
{
	size_t nser = r->nseries < DX_MAX_SERIES ? r->nseries : DX_MAX_SERIES, i, j;
	int64_t step = x->o->step_ms;
	size_t ncell = (size_t)((x->o->end_ms - x->o->start_ms) / step) + 1;
	bool stacked = area &&
		       json_object_get(json_object_get(w, "options"), "stacked") != json_false();
	double lo, hi, *base = NULL;
	cairo_t *cr = x->cr;
	struct dx_box p;

	dx_extent(r, nser, x, stacked, &lo, &hi);
	lo = dx_opt_num(w, "y_min", lo);
	hi = dx_opt_num(w, "y_max", hi);
	if (hi <= lo)
		hi = lo + 1;
	p = dx_axes(x, b, lo, hi, w);
	if (p.w < 20 || p.h < 20)
		return;
	if (stacked && ncell <= 1000000)
		base = calloc(ncell, sizeof(*base));
	cairo_save(cr);
	cairo_rectangle(cr, p.x, p.y, p.w, p.h);
	cairo_clip(cr);
	cairo_set_line_width(cr, 1.5);
	for (i = 0; i < nser; i++) {
		const struct promql_series *s = &r->series[i];
		struct dx_rgb c = dx_palette[i % (sizeof(dx_palette) / sizeof(dx_palette[0]))];
		bool pen = false;

		for (j = 0; j < s->n; j++) {
			int64_t k = (s->t[j] - x->o->start_ms) / step;
			double v = s->v[j];

			if (isnan(v) || k < 0 || (size_t)k >= ncell) {
				pen = false;
				continue;
			}
			if (base) {
				/* the band from the running sum to the sum with this point */
				double y0 = dx_px_y(p, lo, hi, base[k]);

				base[k] += v;
				cairo_set_source_rgba(cr, c.r, c.g, c.b, 0.6);
				cairo_rectangle(cr, dx_px_x(x, p, s->t[j]) - 0.5,
						dx_px_y(p, lo, hi, base[k]),
						fmax(p.w / (double)ncell, 1) + 1,
						y0 - dx_px_y(p, lo, hi, base[k]));
				cairo_fill(cr);
				continue;
			}
			/* a gap longer than two steps breaks the line */
			if (pen && j && s->t[j] - s->t[j - 1] > 2 * step)
				pen = false;
			if (pen)
				cairo_line_to(cr, dx_px_x(x, p, s->t[j]), dx_px_y(p, lo, hi, v));
			else
				cairo_move_to(cr, dx_px_x(x, p, s->t[j]), dx_px_y(p, lo, hi, v));
			pen = true;
		}
		if (!base) {
			dx_set(cr, c);
			cairo_stroke(cr);
		}
	}
	free(base);
	dx_threshold_lines(cr, p, lo, hi, w);
	cairo_restore(cr);
	/* legend: the first series' names along the top */
	dx_font(cr, 9, false);
	for (i = 0; i < nser && i < 4; i++) {
		char name[96];

		dx_set(cr, dx_palette[i % (sizeof(dx_palette) / sizeof(dx_palette[0]))]);
		dx_legend(&r->series[i], name, sizeof(name));
		dx_text(cr, p.x + 4 + i * p.w / 4, p.y + 10, p.w / 4 - 6, 0, name);
	}
}

/* One bar per series: its last value (horizontal bars with the option). */
static void dx_bars(struct dx_ctx *x, struct dx_box b, const json_t *w,
		    const struct promql_result *r)
{
	size_t nser = r->nseries < DX_MAX_SERIES ? r->nseries : DX_MAX_SERIES, i;
	bool horiz = !strcmp(dx_opt_str(w, "orientation", "vertical"), "horizontal");
	const char *unit = json_string_value(json_object_get(w, "unit"));
	double hi = 0, lo = 0, slot;
	cairo_t *cr = x->cr;
	char name[96], val[64];

	for (i = 0; i < nser; i++)
		if (isfinite(dx_last(&r->series[i]))) {
			hi = fmax(hi, dx_last(&r->series[i]));
			lo = fmin(lo, dx_last(&r->series[i]));
		}
	if (hi <= lo)
		hi = lo + 1;
	if (!nser)
		return;
	dx_font(cr, 9, false);
	slot = (horiz ? b.h : b.w) / (double)nser;
	for (i = 0; i < nser; i++) {
		double v = dx_last(&r->series[i]), f = isfinite(v) ? (v - lo) / (hi - lo) : 0;
		struct dx_rgb c = dx_threshold_color(
			w, v, dx_palette[i % (sizeof(dx_palette) / sizeof(dx_palette[0]))]);

		dx_legend(&r->series[i], name, sizeof(name));
		dx_format(v, unit, 3, val, sizeof(val));
		if (horiz) {
			double y = b.y + slot * i, bw = (b.w - 110) * f;

			dx_set(cr, c);
			cairo_rectangle(cr, b.x + 100, y + 2, fmax(bw, 1), fmax(slot - 4, 1));
			cairo_fill(cr);
			cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
			dx_text(cr, b.x + 96, y + slot / 2 + 3, 94, 1, name);
			dx_text(cr, b.x + 104 + bw, y + slot / 2 + 3, 80, 0, val);
		} else {
			double xx = b.x + slot * i, bh = (b.h - 28) * f;

			dx_set(cr, c);
			cairo_rectangle(cr, xx + 3, b.y + b.h - 16 - bh, fmax(slot - 6, 1),
					fmax(bh, 1));
			cairo_fill(cr);
			cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
			dx_text(cr, xx + slot / 2, b.y + b.h - 4, slot - 2, 2, name);
			dx_text(cr, xx + slot / 2, b.y + b.h - 20 - bh, slot - 2, 2, val);
		}
	}
}

static int dx_by_le(const void *a, const void *b)
{
	const struct promql_series *x = *(const struct promql_series *const *)a;
	const struct promql_series *y = *(const struct promql_series *const *)b;
	const char *lx = dx_label(x, "le"), *ly = dx_label(y, "le");
	double vx = lx ? strtod(lx, NULL) : 0, vy = ly ? strtod(ly, NULL) : 0;

	return (vx > vy) - (vx < vy);
}

/* Series (ordered by le when they have it) x time cells, shaded by value. */
static void dx_heatmap(struct dx_ctx *x, struct dx_box b, const json_t *w,
		       const struct promql_result *r)
{
	const char *scheme = dx_opt_str(w, "color_scheme", "blues");
	size_t nser = r->nseries < 64 ? r->nseries : 64, i, j;
	const struct promql_series *rows[64];
	struct dx_box p = { b.x + 64, b.y + 2, b.w - 68, b.h - 6 };
	double hi = 0, rh;
	cairo_t *cr = x->cr;
	char name[96];

	if (!nser || p.w < 10 || p.h < 10)
		return;
	for (i = 0; i < nser; i++) {
		rows[i] = &r->series[i];
		for (j = 0; j < rows[i]->n; j++)
			if (isfinite(rows[i]->v[j]))
				hi = fmax(hi, rows[i]->v[j]);
	}
	qsort(rows, nser, sizeof(rows[0]), dx_by_le);
	rh = p.h / (double)nser;
	dx_font(cr, 8, false);
	for (i = 0; i < nser; i++) {
		double y = p.y + p.h - rh * (i + 1);

		for (j = 0; j < rows[i]->n; j++) {
			double f = hi > 0 && isfinite(rows[i]->v[j]) ? rows[i]->v[j] / hi : 0;
			double x0 = dx_px_x(x, p, rows[i]->t[j]);
			double cw = fmax(p.w * (double)x->o->step_ms /
						 (double)(x->o->end_ms - x->o->start_ms + 1),
					 1);

			if (!strcmp(scheme, "reds"))
				cairo_set_source_rgb(cr, 1, 1 - 0.8 * f, 1 - 0.8 * f);
			else if (!strcmp(scheme, "greens"))
				cairo_set_source_rgb(cr, 1 - 0.8 * f, 1 - 0.35 * f, 1 - 0.8 * f);
			else if (!strcmp(scheme, "viridis"))
				cairo_set_source_rgb(cr, 0.27 + 0.7 * f * f, 0.0 + 0.9 * f,
						     0.33 + 0.2 * (1 - f));
			else
				cairo_set_source_rgb(cr, 1 - 0.85 * f, 1 - 0.6 * f, 1 - 0.2 * f);
			cairo_rectangle(cr, x0, y, cw, rh);
			cairo_fill(cr);
		}
		if (rh >= 8) {
			const char *le = dx_label(rows[i], "le");

			if (le)
				snprintf(name, sizeof(name), "le %s", le);
			else
				dx_legend(rows[i], name, sizeof(name));
			cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
			dx_text(cr, p.x - 3, y + rh / 2 + 3, 60, 1, name);
		}
	}
}

/* The single value a gauge, stat, status or progress shows: the first series, reduced. */
static double dx_single(const json_t *w, const struct promql_result *r)
{
	if (!r->nseries)
		return NAN;
	return dx_reduce(&r->series[0], dx_opt_str(w, "reduce", "last"));
}

static void dx_gauge(struct dx_ctx *x, struct dx_box b, const json_t *w,
		     const struct promql_result *r, bool progress)
{
	const char *unit = json_string_value(json_object_get(w, "unit"));
	double unit_max = unit && !strcmp(unit, "percentunit") ? 1 : 100;
	double lo = dx_opt_num(w, "min", 0), hi = dx_opt_num(w, "max", unit_max);
	double v = dx_single(w, r), f = isfinite(v) && hi > lo ? (v - lo) / (hi - lo) : 0;
	struct dx_rgb c = dx_threshold_color(w, v, dx_palette[4]);
	int dec = (int)dx_opt_num(w, "decimals", 3);
	cairo_t *cr = x->cr;
	char val[64];

	f = fmin(fmax(f, 0), 1);
	dx_format(v, unit, dec, val, sizeof(val));
	if (progress) {
		double bh = fmin(b.h / 3, 24), y = b.y + b.h / 2 - bh / 2;

		cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
		cairo_rectangle(cr, b.x + 6, y, b.w - 12, bh);
		cairo_fill(cr);
		dx_set(cr, c);
		cairo_rectangle(cr, b.x + 6, y, (b.w - 12) * f, bh);
		cairo_fill(cr);
		cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
		dx_font(cr, 12, true);
		dx_text(cr, b.x + b.w / 2, y + bh + 16, b.w - 12, 2, val);
		return;
	}
	{
		double rad = fmin(b.w / 2 - 8, b.h - 24), cx = b.x + b.w / 2, cy = b.y + b.h - 18;

		if (rad < 8)
			return;
		cairo_set_line_width(cr, fmax(rad / 5, 3));
		cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
		cairo_arc(cr, cx, cy, rad, M_PI, 2 * M_PI);
		cairo_stroke(cr);
		dx_set(cr, c);
		cairo_arc(cr, cx, cy, rad, M_PI, M_PI + M_PI * f);
		cairo_stroke(cr);
		cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
		dx_font(cr, fmax(fmin(rad / 3, 22), 9), true);
		dx_text(cr, cx, cy - 2, b.w - 12, 2, val);
	}
}

static void dx_stat(struct dx_ctx *x, struct dx_box b, const json_t *w,
		    const struct promql_result *r, bool status)
{
	const char *unit = json_string_value(json_object_get(w, "unit"));
	double v = dx_single(w, r);
	int dec = (int)dx_opt_num(w, "decimals", 3);
	cairo_t *cr = x->cr;
	char val[64];

	if (status) {
		/* no thresholds: non-zero is fine, zero (or nothing) is not */
		struct dx_rgb bad = dx_named[3].c, ok = dx_named[0].c;
		struct dx_rgb c = json_array_size(json_object_get(w, "thresholds")) ?
					  dx_threshold_color(w, v, dx_named[6].c) :
				  isfinite(v) && v != 0 ? ok :
							  bad;
		bool good = c.r == ok.r && c.g == ok.g && c.b == ok.b;
		double rad = fmin(b.h / 3, 18);

		dx_set(cr, c);
		cairo_arc(cr, b.x + 8 + rad, b.y + b.h / 2, rad, 0, 2 * M_PI);
		cairo_fill(cr);
		cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
		dx_font(cr, 12, true);
		dx_format(v, unit, dec, val, sizeof(val));
		dx_text(cr, b.x + 16 + 2 * rad, b.y + b.h / 2 - 2, b.w - 24 - 2 * rad, 0, val);
		dx_font(cr, 10, false);
		dx_text(cr, b.x + 16 + 2 * rad, b.y + b.h / 2 + 12, b.w - 24 - 2 * rad, 0,
			dx_opt_str(w, good ? "ok_text" : "bad_text", good ? "ok" : "check"));
		return;
	}
	dx_set(cr, dx_threshold_color(w, v, (struct dx_rgb){ 0.1, 0.1, 0.1 }));
	dx_font(cr, fmax(fmin(b.h / 2.5, 30), 9), true);
	dx_format(v, unit, dec, val, sizeof(val));
	dx_text(cr, b.x + b.w / 2, b.y + b.h / 2 + 8, b.w - 8, 2, val);
	if (r->nseries > 1) {
		snprintf(val, sizeof(val), "(first of %zu series)", r->nseries);
		cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
		dx_font(cr, 9, false);
		dx_text(cr, b.x + b.w / 2, b.y + b.h - 3, b.w - 8, 2, val);
	}
}

/* table, alert_list, topology, log_stream: one text row per series. */
static void dx_rows(struct dx_ctx *x, struct dx_box b, const json_t *w,
		    const struct promql_result *r)
{
	const char *unit = json_string_value(json_object_get(w, "unit"));
	size_t i, rows = (size_t)fmax((b.h - 4) / 13, 0);
	cairo_t *cr = x->cr;
	char lab[512], val[64];

	if (!r->nseries) {
		dx_note(cr, b, (struct dx_rgb){ 0.4, 0.4, 0.4 }, "no series");
		return;
	}
	dx_font(cr, 9, false);
	for (i = 0; i < r->nseries && i < rows; i++) {
		double y = b.y + 11 + 13 * i;

		if (i + 1 == rows && r->nseries > rows) {
			snprintf(lab, sizeof(lab), "... %zu more", r->nseries - i);
			cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
			dx_text(cr, b.x + 4, y, b.w - 8, 0, lab);
			break;
		}
		dx_labels(&r->series[i], lab, sizeof(lab));
		dx_format(dx_last(&r->series[i]), unit, 4, val, sizeof(val));
		cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
		dx_text(cr, b.x + 4, y, b.w - 90, 0, lab);
		dx_set(cr, dx_threshold_color(w, dx_last(&r->series[i]),
					      (struct dx_rgb){ 0.15, 0.15, 0.15 }));
		dx_text(cr, b.x + b.w - 4, y, 82, 1, val);
	}
}

static void dx_panel(struct dx_ctx *x, struct dx_box b, const struct dashboard_export_panel *pn)
{
	const json_t *w = pn->widget;
	const char *type = json_string_value(json_object_get(w, "type"));
	const char *title = json_string_value(json_object_get(w, "title"));
	cairo_t *cr = x->cr;
	struct dx_box in;

	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_rectangle(cr, b.x, b.y, b.w, b.h);
	cairo_fill_preserve(cr);
	cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
	cairo_set_line_width(cr, 1);
	cairo_stroke(cr);
	cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
	dx_font(cr, 11, true);
	dx_text(cr, b.x + 6, b.y + 14, b.w - 12, 0,
		title && title[0] ? title : json_string_value(json_object_get(w, "id")));
	in = (struct dx_box){ b.x + 4, b.y + DX_PANEL_TITLE + 2, b.w - 8,
			      b.h - DX_PANEL_TITLE - 6 };
	if (in.w < 10 || in.h < 10)
		return;
	cairo_save(cr);
	cairo_rectangle(cr, b.x, b.y, b.w, b.h);
	cairo_clip(cr);
	if (!pn->result)
		dx_note(cr, in, dx_named[3].c, pn->error[0] ? pn->error : "no data");
	else if (!strcmp(type, "line"))
		dx_chart(x, in, w, pn->result, false);
	else if (!strcmp(type, "area"))
		dx_chart(x, in, w, pn->result, true);
	else if (!strcmp(type, "bar"))
		dx_bars(x, in, w, pn->result);
	else if (!strcmp(type, "heatmap"))
		dx_heatmap(x, in, w, pn->result);
	else if (!strcmp(type, "gauge"))
		dx_gauge(x, in, w, pn->result, false);
	else if (!strcmp(type, "progress"))
		dx_gauge(x, in, w, pn->result, true);
	else if (!strcmp(type, "stat"))
		dx_stat(x, in, w, pn->result, false);
	else if (!strcmp(type, "status"))
		dx_stat(x, in, w, pn->result, true);
	else
		dx_rows(x, in, w, pn->result);
	cairo_restore(cr);
}

/* ------------------------------------------------------------------ */
/* Pages */

static json_int_t dx_pos(const json_t *w, const char *k, json_int_t def)
{
	const json_t *v = json_object_get(json_object_get(w, "position"), k);

	return json_is_integer(v) ? json_integer_value(v) : def;
}

/* Grid rows the panels need. */
static json_int_t dx_grid_rows(const struct dashboard_export_panel *panels, size_t n)
{
	json_int_t rows = 1;
	size_t i;

	for (i = 0; i < n; i++) {
		json_int_t end =
			dx_pos(panels[i].widget, "y", 0) + dx_pos(panels[i].widget, "h", 4);

		if (end > rows)
			rows = end;
	}
	return rows;
}

static void dx_draw(cairo_t *cr, const struct dashboard_export_opts *o,
		    const struct dashboard_export_panel *panels, size_t n, int height)
{
	struct dx_ctx x = { cr, o };
	json_int_t rows = dx_grid_rows(panels, n);
	double col = (o->width - 2 * DX_MARGIN) / 12.0;
	double row = (height - DASHBOARD_EXPORT_TITLE_PX - DX_MARGIN) / (double)rows;
	char from[40], to[40], sub[160];
	size_t i;

	cairo_set_source_rgb(cr, 0.96, 0.96, 0.97);
	cairo_paint(cr);
	cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
	dx_font(cr, 20, true);
	dx_text(cr, DX_MARGIN, 28, o->width - 2 * DX_MARGIN, 0, o->title ? o->title : "dashboard");
	{
		time_t a = (time_t)(o->start_ms / 1000), b = (time_t)(o->end_ms / 1000);
		struct tm ta, tb;

		gmtime_r(&a, &ta);
		gmtime_r(&b, &tb);
		strftime(from, sizeof(from), "%Y-%m-%d %H:%M:%S", &ta);
		strftime(to, sizeof(to), "%Y-%m-%d %H:%M:%S", &tb);
		snprintf(sub, sizeof(sub), "%s to %s UTC, step %lld s, %zu widgets", from, to,
			 (long long)(o->step_ms / 1000), n);
	}
	cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
	dx_font(cr, 11, false);
	dx_text(cr, DX_MARGIN, 46, o->width - 2 * DX_MARGIN, 0, sub);
	for (i = 0; i < n; i++) {
		const json_t *w = panels[i].widget;
		struct dx_box b = {
			DX_MARGIN + col * (double)dx_pos(w, "x", 0) + DX_GAP / 2,
			DASHBOARD_EXPORT_TITLE_PX + row * (double)dx_pos(w, "y", 0) + DX_GAP / 2,
			col * (double)dx_pos(w, "w", 6) - DX_GAP,
			row * (double)dx_pos(w, "h", 4) - DX_GAP,
		};

		if (b.w > 4 && b.h > 4)
			dx_panel(&x, b, &panels[i]);
	}
}

/* A growing memory buffer for cairo's stream writers. */
struct dx_buf {
	char *p;
	size_t len, cap;
};

static cairo_status_t dx_write(void *closure, const unsigned char *data, unsigned int length)
{
	struct dx_buf *b = closure;

	if (b->len + length > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		char *grown;

		while (cap < b->len + length)
			cap *= 2;
		grown = realloc(b->p, cap);
		if (!grown)
			return CAIRO_STATUS_NO_MEMORY;
		b->p = grown;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, length);
	b->len += length;
	return CAIRO_STATUS_SUCCESS;
}

int dashboard_export_render(const struct dashboard_export_opts *o,
			    const struct dashboard_export_panel *panels, size_t n, char **out,
			    size_t *len)
{
	struct dx_buf buf = { 0 };
	cairo_surface_t *s = NULL;
	cairo_t *cr = NULL;
	cairo_status_t st;
	int height, err = 0;

	if (!o || o->width < 100 || o->width > DASHBOARD_EXPORT_MAX_PX ||
	    (o->height && o->height < 100) || o->height < 0 ||
	    o->height > DASHBOARD_EXPORT_MAX_PX || o->step_ms <= 0 || o->end_ms < o->start_ms ||
	    (n && !panels))
		return -EINVAL;
	height = o->height;
	if (!height) {
		/* tall grids are squeezed into the maximum height */
		json_int_t rows = dx_grid_rows(panels, n);
		json_int_t h = DASHBOARD_EXPORT_TITLE_PX + rows * DASHBOARD_EXPORT_ROW_PX +
			       (json_int_t)DX_MARGIN;

		height = (int)(h < DASHBOARD_EXPORT_MAX_PX ? h : DASHBOARD_EXPORT_MAX_PX);
	}
	if (o->format == DASHBOARD_EXPORT_PNG)
		s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, o->width, height);
	else
		s = cairo_pdf_surface_create_for_stream(dx_write, &buf, o->width, height);
	if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
		err = cairo_surface_status(s) == CAIRO_STATUS_NO_MEMORY ? -ENOMEM : -EIO;
		goto out;
	}
	cr = cairo_create(s);
	dx_draw(cr, o, panels, n, height);
	st = cairo_status(cr);
	cairo_destroy(cr);
	cr = NULL;
	if (st != CAIRO_STATUS_SUCCESS) {
		err = st == CAIRO_STATUS_NO_MEMORY ? -ENOMEM : -EIO;
		goto out;
	}
	if (o->format == DASHBOARD_EXPORT_PNG)
		st = cairo_surface_write_to_png_stream(s, dx_write, &buf);
	else
		cairo_surface_finish(s); /* the PDF is written out here */
	if (st == CAIRO_STATUS_SUCCESS)
		st = cairo_surface_status(s);
	if (st != CAIRO_STATUS_SUCCESS || !buf.len)
		err = st == CAIRO_STATUS_NO_MEMORY ? -ENOMEM : -EIO;
out:
	cairo_surface_destroy(s);
	if (err) {
		free(buf.p);
		return err;
	}
	*out = buf.p;
	*len = buf.len;
	return 0;
}

int dashboard_export_json(const json_t *doc, char **out, size_t *len)
{
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
	char *nl;
	size_t n;

	if (!s)
		return -ENOMEM;
	n = strlen(s);
	nl = realloc(s, n + 2);
	if (!nl) {
		free(s);
		return -ENOMEM;
	}
	nl[n] = '\n';
	nl[n + 1] = '\0';
	*out = nl;
	*len = n + 1;
	return 0;
}

void dashboard_export_release_caches(void)
{
	cairo_debug_reset_static_data();
	FcFini();
}
