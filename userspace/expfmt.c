/* SPDX-License-Identifier: Apache-2.0 */
/*
 * expfmt: Prometheus text exposition reader; see expfmt.h.
 *
 * Each line is copied token by token into the scratch buffer, NUL-terminated
 * and unescaped. Every token that gets a NUL is followed in the input by at
 * least one character that is not copied (a brace, '=', a quote or a blank),
 * and unescaping only shrinks, so line length + 1 bytes of scratch always
 * suffice.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "expfmt.h"

static int expfmt_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int expfmt_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int expfmt_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

struct expfmt_cursor {
	const char *s;
	const char *end;
	char *out;
};

static void expfmt_skip_blanks(struct expfmt_cursor *c)
{
	while (c->s < c->end && expfmt_is_blank(*c->s))
		c->s++;
}

/*
 * Copy an identifier (metric name when colons is set, label name otherwise)
 * to the scratch. Returns its start, or NULL when there is none.
 */
static const char *expfmt_ident(struct expfmt_cursor *c, int colons)
{
	const char *start = c->out;

	if (c->s >= c->end || !(expfmt_is_alpha(*c->s) || (colons && *c->s == ':')))
		return NULL;
	while (c->s < c->end &&
	       (expfmt_is_alpha(*c->s) || expfmt_is_digit(*c->s) || (colons && *c->s == ':')))
		*c->out++ = *c->s++;
	*c->out++ = '\0';
	return start;
}

/* Copy a quoted label value, unescaping. Returns its start or NULL. */
static const char *expfmt_quoted(struct expfmt_cursor *c)
{
	const char *start = c->out;

	if (c->s >= c->end || *c->s != '"')
		return NULL;
	c->s++;
	while (c->s < c->end && *c->s != '"') {
		if (*c->s == '\\' && c->s + 1 < c->end) {
			char e = c->s[1];

			if (e == 'n') {
				*c->out++ = '\n';
			} else if (e == '\\' || e == '"') {
				*c->out++ = e;
			} else {
				*c->out++ = '\\';
				*c->out++ = e;
			}
			c->s += 2;
			continue;
		}
		*c->out++ = *c->s++;
	}
	if (c->s >= c->end)
		return NULL; /* no closing quote on this line */
	c->s++;
	*c->out++ = '\0';
	return start;
}

/* The next blank-delimited token as [*tok, *tok + *len). Returns its length. */
static size_t expfmt_token(struct expfmt_cursor *c, const char **tok)
{
	*tok = c->s;
	while (c->s < c->end && !expfmt_is_blank(*c->s))
		c->s++;
	return (size_t)(c->s - *tok);
}

static int expfmt_parse_value(const char *tok, size_t len, double *value)
{
	char buf[64];
	char *end;

	if (!len || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, tok, len);
	buf[len] = '\0';
	*value = strtod(buf, &end);
	return *end ? -EINVAL : 0;
}

static int expfmt_parse_timestamp(const char *tok, size_t len, int64_t *ts)
{
	char buf[32];
	char *end;

	if (!len || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, tok, len);
	buf[len] = '\0';
	if (!expfmt_is_digit(buf[0]) && !(buf[0] == '-' && expfmt_is_digit(buf[1])))
		return -EINVAL;
	errno = 0;
	*ts = strtoll(buf, &end, 10);
	return errno || *end ? -EINVAL : 0;
}

/* Parse one non-empty, non-comment line [s, end) into smp. */
static int expfmt_parse_line(struct expfmt_parser *p, const char *s, const char *end,
			     struct expfmt_sample *smp)
{
	struct expfmt_cursor c = { .s = s, .end = end, .out = p->scratch };
	const char *after_name;
	const char *tok;
	size_t len;
	int err;

	smp->nlabels = 0;
	smp->has_timestamp = 0;
	smp->timestamp_ms = 0;

	smp->name = expfmt_ident(&c, 1);
	if (!smp->name)
		return -EINVAL;
	after_name = c.s;
	expfmt_skip_blanks(&c);
	if (c.s < c.end && *c.s == '{') {
		c.s++;
		for (;;) {
			struct expfmt_label *l;

			expfmt_skip_blanks(&c);
			if (c.s < c.end && *c.s == '}')
				break;
			if (smp->nlabels == EXPFMT_MAX_LABELS)
				return -E2BIG;
			l = &smp->labels[smp->nlabels];
			l->name = expfmt_ident(&c, 0);
			if (!l->name)
				return -EINVAL;
			expfmt_skip_blanks(&c);
			if (c.s >= c.end || *c.s != '=')
				return -EINVAL;
			c.s++;
			expfmt_skip_blanks(&c);
			l->value = expfmt_quoted(&c);
			if (!l->value)
				return -EINVAL;
			smp->nlabels++;
			expfmt_skip_blanks(&c);
			if (c.s < c.end && *c.s == ',') {
				c.s++;
				continue;
			}
			if (c.s < c.end && *c.s == '}')
				break;
			return -EINVAL;
		}
		c.s++; /* the '}' */
		expfmt_skip_blanks(&c);
	} else if (c.s == after_name) {
		return -EINVAL; /* the name runs into something that is not a blank */
	}

	len = expfmt_token(&c, &tok);
	err = expfmt_parse_value(tok, len, &smp->value);
	if (err)
		return err;
	expfmt_skip_blanks(&c);
	if (c.s < c.end) {
		len = expfmt_token(&c, &tok);
		err = expfmt_parse_timestamp(tok, len, &smp->timestamp_ms);
		if (err)
			return err;
		smp->has_timestamp = 1;
		expfmt_skip_blanks(&c);
		if (c.s < c.end)
			return -EINVAL;
	}
	return 0;
}

void expfmt_parser__init(struct expfmt_parser *p, const char *text, size_t len)
{
	p->pos = text;
	p->end = text ? text + len : NULL;
	p->line = 0;
	p->scratch = NULL;
	p->scratch_cap = 0;
}

int expfmt_parser__next(struct expfmt_parser *p, struct expfmt_sample *s)
{
	while (p->pos && p->pos < p->end) {
		const char *start = p->pos;
		const char *nl = memchr(start, '\n', (size_t)(p->end - start));
		const char *end = nl ? nl : p->end;
		size_t need;
		int err;

		p->pos = nl ? nl + 1 : p->end;
		p->line++;
		while (start < end && expfmt_is_blank(*start))
			start++;
		while (end > start && (expfmt_is_blank(end[-1]) || end[-1] == '\r'))
			end--;
		if (start == end || *start == '#')
			continue;

		need = (size_t)(end - start) + 1;
		if (need > p->scratch_cap) {
			char *n = realloc(p->scratch, need);

			if (!n)
				return -ENOMEM;
			p->scratch = n;
			p->scratch_cap = need;
		}
		err = expfmt_parse_line(p, start, end, s);
		return err ? err : 1;
	}
	return 0;
}

void expfmt_parser__release(struct expfmt_parser *p)
{
	free(p->scratch);
	p->scratch = NULL;
	p->scratch_cap = 0;
}

const char *expfmt_sample__label(const struct expfmt_sample *s, const char *name)
{
	unsigned int i;

	for (i = 0; i < s->nlabels; i++)
		if (!strcmp(s->labels[i].name, name))
			return s->labels[i].value;
	return NULL;
}
