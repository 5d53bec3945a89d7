/* SPDX-License-Identifier: Apache-2.0 */
/*
 * novamon detect: offline anomaly scoring of one series in a CSV file.
 *
 * Input: a header line, then rows "timestamp,value" in time order (equal
 * timestamps allowed, any spacing). Timestamps are "YYYY-MM-DD HH:MM:SS"
 * (UTC) or RFC 3339 ("2026-11-24T08:00:00.250+01:00"; T or space, optional
 * fraction, Z or a +-hh:mm offset). Fields may be double-quoted; blank lines
 * are skipped. Output: the header "timestamp,value,anomaly_score" and one
 * row per input row, in order, timestamp and value echoed as they were
 * written, the score in [0, 1] computed by the analytics engine from that
 * row and the rows before it only (the engine is causal; nothing is read
 * ahead). The whole input is checked as it is scored: the first malformed
 * row stops with "novamon detect: FILE:LINE: what" and exit status 1, and the
 * output file is written to a temporary file renamed into place only on
 * success, so a failed run leaves no output behind. With --output - the
 * output is held in memory and printed only on success, for the same reason.
 *
 * Links only libc, libm, pthread and the analytics library.
 * Exit status: 0 success, 1 bad input or I/O error, 2 usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf(), open_memstream() */
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "detector.h"
#include "engine.h"

#define DETECT_PREFIX "novamon detect: "

struct detect_opts {
	const char *input;
	const char *output;
	int detector; /* detector id, or DETECTOR_COUNT: the ensemble */
	uint32_t period;
};

/* Where we are in the input, for messages. */
struct detect_pos {
	const char *name;
	unsigned long line;
};

static void detect_usage(FILE *f)
{
	fprintf(f,
		"Usage: novamon detect --input FILE.csv --output FILE.csv [OPTIONS]\n"
		"Score every row of a time series for anomalies, offline.\n"
		"\n"
		"  -i, --input FILE     CSV with a header and rows timestamp,value (- : stdin)\n"
		"  -o, --output FILE    CSV timestamp,value,anomaly_score (- : stdout)\n"
		"  -d, --detector NAME  ensemble (default), stat, seasonal, iforest, gru (lstm)\n"
		"  -p, --period N       season length in rows (default: detected)\n"
		"  -h, --help           show this help\n"
		"\n"
		"Timestamps: 'YYYY-MM-DD HH:MM:SS' (UTC) or RFC 3339 (2026-11-24T08:00:00.5Z,\n"
		"...+01:00). Each score in [0, 1] uses that row and the rows before it only;\n"
		">= 0.5 means anomalous.\n"
		"Exit status: 0 success, 1 bad input or I/O error (no output file is left),\n"
		"2 usage.\n");
}

/* Returns 0, 1 after --help, or -EINVAL after a message. */
static int detect_parse_args(struct detect_opts *o, int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "detector", required_argument, NULL, 'd' },
		{ "period", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long v;
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->detector = DETECTOR_COUNT;
	optind = 0; /* reset getopt: the caller may have used it */
	while ((c = getopt_long(argc, argv, "i:o:d:p:h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			o->input = optarg;
			break;
		case 'o':
			o->output = optarg;
			break;
		case 'd':
			o->detector = detector_parse(optarg);
			if (o->detector < 0) {
				fprintf(stderr,
					DETECT_PREFIX "unknown detector '%s' (ensemble, stat, "
						      "seasonal, iforest, gru, lstm)\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'p':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 2 || v > 86400 * 7) {
				fprintf(stderr, DETECT_PREFIX "--period %s: want 2..604800 rows\n",
					optarg);
				return -EINVAL;
			}
			o->period = (uint32_t)v;
			break;
		case 'h':
			detect_usage(stdout);
			return 1;
		default:
			detect_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, DETECT_PREFIX "unexpected argument '%s'\n\n", argv[optind]);
		detect_usage(stderr);
		return -EINVAL;
	}
	if (!o->input || !o->output) {
		fprintf(stderr, DETECT_PREFIX "%s is required\n\n",
			!o->input ? "--input" : "--output");
		detect_usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* Exactly n digits from *s (advanced past them) into *v. */
static bool detect_digits(const char **s, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if ((*s)[i] < '0' || (*s)[i] > '9')
			return false;
		*v = *v * 10 + ((*s)[i] - '0');
	}
	*s += n;
	return true;
}

static bool detect_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian (H. Hinnant's days_from_civil). */
static int64_t detect_days(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * "YYYY-MM-DD HH:MM:SS" or RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)"
 * (T, t or space; the fraction and the zone optional in both) into
 * milliseconds since the epoch, UTC. Every field is range-checked (Feb 29
 * only in leap years; second 60 for a leap second). Returns 0 or -EINVAL.
 */
static int detect_parse_time(const char *s, int64_t *ms)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, oh = 0, om = 0, frac = 0, scale = 100, sign = 0;

	if (!detect_digits(&s, 4, &y) || *s++ != '-' || !detect_digits(&s, 2, &mo) || *s++ != '-' ||
	    !detect_digits(&s, 2, &d))
		return -EINVAL;
	if (*s != 'T' && *s != 't' && *s != ' ')
		return -EINVAL;
	s++;
	if (!detect_digits(&s, 2, &h) || *s++ != ':' || !detect_digits(&s, 2, &mi) || *s++ != ':' ||
	    !detect_digits(&s, 2, &sec))
		return -EINVAL;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		for (; *s >= '0' && *s <= '9'; s++) {
			frac += (*s - '0') * scale;
			scale /= 10;
		}
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s++ == '-' ? -1 : 1;
		if (!detect_digits(&s, 2, &oh) || *s++ != ':' || !detect_digits(&s, 2, &om) ||
		    oh > 23 || om > 59)
			return -EINVAL;
	}
	if (*s)
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && detect_leap(y) ? 1 : 0) ||
	    h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	*ms = ((detect_days(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec;
	*ms -= (int64_t)sign * (oh * 3600 + om * 60);
	*ms = *ms * 1000 + frac;
	return 0;
}

/*
 * A field's text without surrounding blanks and double quotes, copied to
 * buf (NUL-terminated). false if it does not fit.
 */
static bool detect_field(const char *s, size_t len, char *buf, size_t size)
{
	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
		s++;
		len -= 2;
	}
	if (len >= size)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return true;
}

/* The field for a message: at most 64 bytes of it. */
static int detect_shown(size_t len)
{
	return len > 64 ? 64 : (int)len;
}

/*
 * Parse one data row (line without its newline): on success *comma is the
 * offset of the separator. Returns 0, or -EINVAL after printing why.
 */
static int detect_parse_row(const struct detect_pos *pos, const char *line, size_t len,
			    int64_t *t_ms, double *value, size_t *comma, bool quiet)
{
	const char *c = memchr(line, ',', len), *v;
	char buf[128] = "", *end;
	size_t vlen;

	if (!c || memchr(c + 1, ',', len - (c + 1 - line))) {
		if (!quiet)
			fprintf(stderr,
				DETECT_PREFIX "%s:%lu: expected 2 fields timestamp,value, got %s\n",
				pos->name, pos->line, c ? "more" : "1");
		return -EINVAL;
	}
	*comma = c - line;
	if (!detect_field(line, *comma, buf, sizeof(buf)) || detect_parse_time(buf, t_ms)) {
		if (!quiet)
			fprintf(stderr, DETECT_PREFIX "%s:%lu: bad timestamp \"%.*s\"\n", pos->name,
				pos->line, detect_shown(*comma), line);
		return -EINVAL;
	}
	v = c + 1;
	vlen = len - (v - line);
	if (!detect_field(v, vlen, buf, sizeof(buf))) {
		if (!quiet)
			fprintf(stderr, DETECT_PREFIX "%s:%lu: bad value \"%.*s\"\n", pos->name,
				pos->line, detect_shown(vlen), v);
		return -EINVAL;
	}
	if (!buf[0]) {
		if (!quiet)
			fprintf(stderr, DETECT_PREFIX "%s:%lu: empty value\n", pos->name,
				pos->line);
		return -EINVAL;
	}
	errno = 0;
	*value = strtod(buf, &end);
	if (end == buf || *end) {
		if (!quiet)
			fprintf(stderr, DETECT_PREFIX "%s:%lu: bad value \"%s\"\n", pos->name,
				pos->line, buf);
		return -EINVAL;
	}
	if (!isfinite(*value) || fabs(*value) > 1e38) {
		if (!quiet)
			fprintf(stderr,
				DETECT_PREFIX "%s:%lu: value \"%s\" is not a finite number "
					      "within +-1e38\n",
				pos->name, pos->line, buf);
		return -EINVAL;
	}
	return 0;
}

/* A temporary file next to path, to be renamed over it; NULL after a message. */
static FILE *detect_open_temp(const char *path, char **tmp)
{
	mode_t mask;
	FILE *f;
	int fd;

	if (asprintf(tmp, "%s.tmp.XXXXXX", path) < 0) {
		*tmp = NULL;
		fprintf(stderr, DETECT_PREFIX "out of memory\n");
		return NULL;
	}
	fd = mkstemp(*tmp);
	if (fd < 0) {
		fprintf(stderr, DETECT_PREFIX "%s: cannot create a file there: %s\n", path,
			strerror(errno));
		free(*tmp);
		*tmp = NULL;
		return NULL;
	}
	mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	f = fdopen(fd, "w");
	if (!f) {
		fprintf(stderr, DETECT_PREFIX "%s: %s\n", *tmp, strerror(errno));
		close(fd);
		unlink(*tmp);
		free(*tmp);
		*tmp = NULL;
	}
	return f;
}

static struct engine *detect_engine(const struct detect_opts *o)
{
	struct engine_params p;

	engine_params_init(&p);
	p.slots = 1;
	p.detectors = o->detector == DETECTOR_COUNT ? DETECTOR_ALL : ENGINE_ONLY(o->detector);
	p.sync_train = true; /* deterministic: the same file always gives the same scores */
	p.seasonal.period = o->period;
	return engine__new(&p);
}

/* Score in to out. Returns 0, or 1 after a message. */
static int detect_run(const struct detect_opts *o, FILE *in, const char *in_name, FILE *out)
{
	struct detect_pos pos = { .name = in_name };
	struct engine_verdict v;
	struct engine *e = NULL;
	int64_t t_ms, t_prev = INT64_MIN;
	char *line = NULL;
	size_t cap = 0, comma;
	bool header = false;
	ssize_t got;
	double value;
	float x;
	int ret = 1;

	e = detect_engine(o);
	if (!e) {
		fprintf(stderr, DETECT_PREFIX "cannot start the detectors: %s\n", strerror(errno));
		return 1;
	}
	if (engine__add(e) != 0)
		goto out;
	fputs("timestamp,value,anomaly_score\n", out);
	while ((got = getline(&line, &cap, in)) >= 0) {
		size_t len = (size_t)got;

		pos.line++;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (memchr(line, '\0', len)) {
			fprintf(stderr, DETECT_PREFIX "%s:%lu: NUL byte in the line\n", pos.name,
				pos.line);
			goto out;
		}
		line[len] = '\0';
		if (strspn(line, " \t") == len)
			continue; /* blank */
		if (!header) {
			header = true;
			if (!detect_parse_row(&pos, line, len, &t_ms, &value, &comma, true)) {
				fprintf(stderr,
					DETECT_PREFIX "%s:%lu: expected a header line "
						      "(timestamp,value), got a data row\n",
					pos.name, pos.line);
				goto out;
			}
			continue;
		}
		if (detect_parse_row(&pos, line, len, &t_ms, &value, &comma, false))
			goto out;
		if (t_ms < t_prev) {
			fprintf(stderr,
				DETECT_PREFIX "%s:%lu: timestamp \"%.*s\" is earlier than the "
					      "previous row's (rows must be in time order)\n",
				pos.name, pos.line, detect_shown(comma), line);
			goto out;
		}
		t_prev = t_ms;
		x = (float)value;
		engine__tick(e, t_ms, &x, &v);
		fprintf(out, "%.*s,%s,%.6f\n", (int)comma, line, line + comma + 1, v.score);
	}
	if (ferror(in)) {
		fprintf(stderr, DETECT_PREFIX "%s: read error: %s\n", pos.name, strerror(errno));
		goto out;
	}
	if (!header) {
		fprintf(stderr, DETECT_PREFIX "%s: empty input (want a header line)\n", pos.name);
		goto out;
	}
	ret = 0;
out:
	free(line);
	engine__free(e);
	return ret;
}

int cli_detect(int argc, char **argv)
{
	struct detect_opts o;
	FILE *in = NULL, *out = NULL;
	char *tmp = NULL, *mem = NULL;
	const char *in_name;
	size_t mem_len = 0;
	int ret = 1, err;

	err = detect_parse_args(&o, argc, argv);
	if (err)
		return err > 0 ? 0 : 2;
	if (!strcmp(o.input, "-")) {
		in = stdin;
		in_name = "stdin";
	} else {
		in = fopen(o.input, "r");
		in_name = o.input;
		if (!in) {
			fprintf(stderr, DETECT_PREFIX "%s: %s\n", o.input, strerror(errno));
			return 1;
		}
	}
	if (!strcmp(o.output, "-")) {
		out = open_memstream(&mem, &mem_len);
		if (!out)
			fprintf(stderr, DETECT_PREFIX "out of memory\n");
	} else {
		out = detect_open_temp(o.output, &tmp);
	}
	if (!out)
		goto out_close;

	ret = detect_run(&o, in, in_name, out);
	if (fflush(out) || ferror(out)) {
		if (!ret)
			fprintf(stderr, DETECT_PREFIX "%s: write error: %s\n", o.output,
				strerror(errno));
		ret = 1;
	}
	if (tmp && !ret && fsync(fileno(out))) {
		fprintf(stderr, DETECT_PREFIX "%s: %s\n", o.output, strerror(errno));
		ret = 1;
	}
	if (fclose(out) && !ret) {
		fprintf(stderr, DETECT_PREFIX "%s: write error: %s\n", o.output, strerror(errno));
		ret = 1;
	}
	out = NULL;
	if (tmp) {
		if (!ret && rename(tmp, o.output)) {
			fprintf(stderr, DETECT_PREFIX "%s: %s\n", o.output, strerror(errno));
			ret = 1;
		}
		if (ret)
			unlink(tmp);
	} else if (!ret) {
		if (fwrite(mem, 1, mem_len, stdout) != mem_len || fflush(stdout)) {
			fprintf(stderr, DETECT_PREFIX "stdout: write error: %s\n", strerror(errno));
			ret = 1;
		}
	}

out_close:
	free(mem);
	free(tmp);
	if (in && in != stdin)
		fclose(in);
	return ret;
}
