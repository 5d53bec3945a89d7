/* SPDX-License-Identifier: Apache-2.0 */
/*
 * expfmt: a small reader of the Prometheus text exposition format (0.0.4),
 * the other side of api/exposition.c, for `novamon top` and tests.
 *
 * Reads sample lines
 *     name{label="value",...} value [timestamp_ms]
 * with optional white space between tokens, an optional trailing comma in
 * the label list, label value escapes \\, \" and \n (any other backslash
 * pair is kept as it is, as Prometheus does), values as Go's ParseFloat
 * reads them (including NaN, +Inf, -Inf), and "\r\n" line ends. Empty lines
 * and lines starting with '#' (HELP, TYPE, comments) are skipped.
 *
 * The parser is a cursor over a caller-owned buffer: each
 * expfmt_parser__next() fills a struct expfmt_sample whose strings point
 * into the parser's scratch space and stay valid until the next call.
 *
 *	struct expfmt_parser p;
 *	struct expfmt_sample s;
 *	int r;
 *
 *	expfmt_parser__init(&p, text, len);
 *	while ((r = expfmt_parser__next(&p, &s)) != 0) {
 *		if (r < 0) { ... p.line is the bad line; continue or stop ... }
 *		else use s.name, expfmt_sample__label(&s, "vm"), s.value
 *	}
 *	expfmt_parser__release(&p);
 */
#ifndef NOVAMON_EXPFMT_H
#define NOVAMON_EXPFMT_H

#include <stddef.h>
#include <stdint.h>

#define EXPFMT_MAX_LABELS 32

struct expfmt_label {
	const char *name;
	const char *value; /* unescaped */
};

struct expfmt_sample {
	const char *name;
	struct expfmt_label labels[EXPFMT_MAX_LABELS];
	unsigned int nlabels;
	double value;
	int has_timestamp;
	int64_t timestamp_ms; /* when has_timestamp */
};

struct expfmt_parser {
	const char *pos;
	const char *end;
	unsigned int line; /* 1-based number of the line last returned or rejected */
	char *scratch;
	size_t scratch_cap;
};

/* Start reading text[0..len). text must outlive the parser. */
void expfmt_parser__init(struct expfmt_parser *p, const char *text, size_t len);

/*
 * Read the next sample into s. Returns 1 for a sample, 0 at the end of the
 * text, -EINVAL for a malformed line, -E2BIG for a line with more than
 * EXPFMT_MAX_LABELS labels, or -ENOMEM. After a negative return p->line
 * names the offending line and the parser has moved past it, so the caller
 * may go on with the next line or give up.
 */
int expfmt_parser__next(struct expfmt_parser *p, struct expfmt_sample *s);

/* Free the scratch space; the parser may be initialised again. */
void expfmt_parser__release(struct expfmt_parser *p);

/* The (unescaped) value of label name in s, or NULL when s has no such label. */
const char *expfmt_sample__label(const struct expfmt_sample *s, const char *name);

#endif /* NOVAMON_EXPFMT_H */
