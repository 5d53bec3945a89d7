/* SPDX-License-Identifier: Apache-2.0 */
/*
 * promql lexer: turns a query into tokens the way Prometheus 2.42's
 * promql/parser/lex.go does (keywords case-insensitive outside braces,
 * numbers with hex / exponent / Inf / NaN, durations with ordered units,
 * quoted strings with Go escapes, raw `strings`, # comments). Also home of
 * the arena every parse and evaluation allocates from.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "promql/ast.h"

struct pq_arena_chunk {
	struct pq_arena_chunk *next;
	size_t used, cap;
	max_align_t data[];
};

#define PQ_ARENA_CHUNK 16384

void *pq_arena_alloc(struct pq_arena *a, size_t n)
{
	struct pq_arena_chunk *c = a->head;
	size_t al = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	void *p;

	if (!al)
		al = sizeof(max_align_t);
	if (!c || c->cap - c->used < al) {
		size_t cap = al > PQ_ARENA_CHUNK ? al : PQ_ARENA_CHUNK;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		/* a big one-off allocation goes behind the current chunk */
		if (a->head && al > PQ_ARENA_CHUNK) {
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	p = (char *)c->data + c->used;
	c->used += al;
	memset(p, 0, al);
	return p;
}

char *pq_arena_strndup(struct pq_arena *a, const char *s, size_t n)
{
	char *p = pq_arena_alloc(a, n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void pq_arena_free(struct pq_arena *a)
{
	struct pq_arena_chunk *c = a->head, *next;

	for (; c; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
}

static const struct {
	const char *word;
	enum pq_tok tok;
} pq_keywords[] = {
	{ "and", T_AND },
	{ "or", T_OR },
	{ "unless", T_UNLESS },
	{ "atan2", T_ATAN2 },
	{ "by", T_BY },
	{ "without", T_WITHOUT },
	{ "on", T_ON },
	{ "ignoring", T_IGNORING },
	{ "group_left", T_GROUP_LEFT },
	{ "group_right", T_GROUP_RIGHT },
	{ "bool", T_BOOL },
	{ "offset", T_OFFSET },
	{ "sum", T_SUM },
	{ "avg", T_AVG },
	{ "min", T_MIN },
	{ "max", T_MAX },
	{ "count", T_COUNT },
	{ "group", T_GROUP },
	{ "stddev", T_STDDEV },
	{ "stdvar", T_STDVAR },
	{ "topk", T_TOPK },
	{ "bottomk", T_BOTTOMK },
	{ "quantile", T_QUANTILE },
	{ "count_values", T_COUNT_VALUES },
};

bool pq_tok_is_keyword(enum pq_tok t)
{
	return t >= T_AND && t <= T_COUNT_VALUES;
}

const char *pq_tok_name(enum pq_tok t)
{
	static const char *const names[] = {
		[T_EOF] = "end of input", [T_ERROR] = "error",	  [T_IDENT] = "identifier",
		[T_NUMBER] = "number",	  [T_STRING] = "string",  [T_DURATION] = "duration",
		[T_LPAREN] = "\"(\"",	  [T_RPAREN] = "\")\"",	  [T_LBRACE] = "\"{\"",
		[T_RBRACE] = "\"}\"",	  [T_LBRACKET] = "\"[\"", [T_RBRACKET] = "\"]\"",
		[T_COMMA] = "\",\"",	  [T_COLON] = "\":\"",	  [T_AT] = "\"@\"",
		[T_ASSIGN] = "\"=\"",	  [T_EQL_RE] = "\"=~\"",  [T_NEQ_RE] = "\"!~\"",
		[T_ADD] = "\"+\"",	  [T_SUB] = "\"-\"",	  [T_MUL] = "\"*\"",
		[T_DIV] = "\"/\"",	  [T_MOD] = "\"%\"",	  [T_POW] = "\"^\"",
		[T_EQLC] = "\"==\"",	  [T_NEQ] = "\"!=\"",	  [T_GTR] = "\">\"",
		[T_LSS] = "\"<\"",	  [T_GTE] = "\">=\"",	  [T_LTE] = "\"<=\"",
	};
	size_t i;

	for (i = 0; i < sizeof(pq_keywords) / sizeof(pq_keywords[0]); i++)
		if (pq_keywords[i].tok == t)
			return pq_keywords[i].word;
	if ((size_t)t < sizeof(names) / sizeof(names[0]) && names[t])
		return names[t];
	return "token";
}

static bool is_alpha(int c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(int c)
{
	return is_alpha(c) || is_digit(c);
}

int pq_parse_duration(const char *s, size_t n, int64_t *ms)
{
	/* model.ParseDuration: units in this order, each at most once */
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{ "y", 365LL * 24 * 3600 * 1000 },
		{ "w", 7LL * 24 * 3600 * 1000 },
		{ "d", 24LL * 3600 * 1000 },
		{ "h", 3600LL * 1000 },
		{ "m", 60LL * 1000 },
		{ "s", 1000 },
		{ "ms", 1 },
	};
	size_t i = 0, u = 0;
	int64_t total = 0;

	if (n == 0)
		return -EINVAL;
	while (i < n) {
		int64_t num = 0;
		size_t j = i, k;

		while (j < n && is_digit(s[j])) {
			if (num > (INT64_MAX - 9) / 10)
				return -ERANGE;
			num = num * 10 + (s[j] - '0');
			j++;
		}
		if (j == i)
			return -EINVAL;
		for (k = u; k < sizeof(units) / sizeof(units[0]); k++) {
			size_t ul = strlen(units[k].unit);

			if (n - j >= ul && !strncmp(s + j, units[k].unit, ul) &&
			    !(ul == 1 && units[k].unit[0] == 'm' && j + 1 < n && s[j + 1] == 's'))
				break;
		}
		if (k == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		if (num && units[k].ms > INT64_MAX / num)
			return -ERANGE;
		total += num * units[k].ms;
		if (total < 0)
			return -ERANGE;
		i = j + strlen(units[k].unit);
		u = k + 1;
	}
	*ms = total;
	return 0;
}

/* Length of a duration at s ("5m", "1h30m") followed by a non-alnum, or 0. */
static size_t scan_duration(const char *s)
{
	size_t i = 0;
	bool any = false;

	for (;;) {
		size_t j = i;

		while (is_digit(s[j]))
			j++;
		if (j == i)
			break;
		if (s[j] == 'm' && s[j + 1] == 's')
			j += 2;
		else if (s[j] && strchr("smhdwy", s[j]))
			j++;
		else
			break;
		any = true;
		i = j;
	}
	if (!any || is_alnum(s[i]) || s[i] == '.')
		return 0;
	return i;
}

/* lex.go scanNumber: digits (hex after 0x), fraction, exponent. */
static size_t scan_number(const char *s)
{
	const char *digits = "0123456789";
	size_t i = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		digits = "0123456789abcdefABCDEF";
		i = 2;
	}
	while (s[i] && strchr(digits, s[i]))
		i++;
	if (s[i] == '.') {
		i++;
		while (s[i] && strchr(digits, s[i]))
			i++;
	}
	if (s[i] == 'e' || s[i] == 'E') {
		i++;
		if (s[i] == '+' || s[i] == '-')
			i++;
		while (is_digit(s[i]))
			i++;
	}
	return i;
}

/* strconv.ParseInt(s, 0, 64) then ParseFloat, as parser.number() does. */
static int parse_number(const char *s, size_t n, double *out)
{
	char buf[128], *end;
	long long ll;
	double d;

	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	ll = strtoll(buf, &end, 0);
	if (!*end && end != buf && errno == 0) {
		*out = (double)ll;
		return 0;
	}
	if (buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
		/* hex floats need a p exponent in Go; a too-large hex int */
		d = strtod(buf, &end);
		if (*end || strchr(buf, '.'))
			return -EINVAL;
		*out = d;
		return 0;
	}
	errno = 0;
	d = strtod(buf, &end);
	if (*end || end == buf)
		return -EINVAL;
	*out = d;
	return 0;
}

static void put_utf8(char *out, size_t *o, uint32_t c)
{
	if (c < 0x80) {
		out[(*o)++] = (char)c;
	} else if (c < 0x800) {
		out[(*o)++] = (char)(0xc0 | (c >> 6));
		out[(*o)++] = (char)(0x80 | (c & 0x3f));
	} else if (c < 0x10000) {
		out[(*o)++] = (char)(0xe0 | (c >> 12));
		out[(*o)++] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (c & 0x3f));
	} else {
		out[(*o)++] = (char)(0xf0 | (c >> 18));
		out[(*o)++] = (char)(0x80 | ((c >> 12) & 0x3f));
		out[(*o)++] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[(*o)++] = (char)(0x80 | (c & 0x3f));
	}
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode the quoted string at q[*i] (the opening quote). On success sets
 * *i past the closing quote and returns the value; else NULL with msg.
 */
static char *lex_string(struct pq_arena *a, const char *q, size_t *i, const char **msg)
{
	char quote = q[*i];
	size_t j = *i + 1, o = 0;
	char *out = pq_arena_alloc(a, strlen(q + j) * 2 + 1);

	if (!out) {
		*msg = "out of memory";
		return NULL;
	}
	for (;;) {
		unsigned char c = (unsigned char)q[j];

		if (!c || (c == '\n' && quote != '`')) {
			*msg = "unterminated quoted string";
			return NULL;
		}
		if (c == (unsigned char)quote) {
			j++;
			break;
		}
		if (c != '\\' || quote == '`') {
			out[o++] = (char)c;
			j++;
			continue;
		}
		j++;
		c = (unsigned char)q[j];
		switch (c) {
		case 'a':
			out[o++] = '\a';
			j++;
			break;
		case 'b':
			out[o++] = '\b';
			j++;
			break;
		case 'f':
			out[o++] = '\f';
			j++;
			break;
		case 'n':
			out[o++] = '\n';
			j++;
			break;
		case 'r':
			out[o++] = '\r';
			j++;
			break;
		case 't':
			out[o++] = '\t';
			j++;
			break;
		case 'v':
			out[o++] = '\v';
			j++;
			break;
		case '\\':
			out[o++] = '\\';
			j++;
			break;
		case '\'':
		case '"':
			if (c != (unsigned char)quote) {
				*msg = "unknown escape sequence";
				return NULL;
			}
			out[o++] = (char)c;
			j++;
			break;
		case 'x':
		case 'u':
		case 'U': {
			int nd = c == 'x' ? 2 : c == 'u' ? 4 : 8, k;
			uint32_t v = 0;

			for (k = 1; k <= nd; k++) {
				int h = hexval(q[j + k]);

				if (h < 0) {
					*msg = "invalid escape sequence";
					return NULL;
				}
				v = v * 16 + (uint32_t)h;
			}
			j += (size_t)nd + 1;
			if (c == 'x') {
				out[o++] = (char)v;
			} else {
				if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000)) {
					*msg = "invalid Unicode code point in escape sequence";
					return NULL;
				}
				put_utf8(out, &o, v);
			}
			break;
		}
		default:
			if (c >= '0' && c <= '7') {
				uint32_t v = 0;
				int k;

				for (k = 0; k < 3; k++) {
					if (q[j + k] < '0' || q[j + k] > '7') {
						*msg = "invalid escape sequence";
						return NULL;
					}
					v = v * 8 + (uint32_t)(q[j + k] - '0');
				}
				if (v > 255) {
					*msg = "invalid escape sequence";
					return NULL;
				}
				out[o++] = (char)v;
				j += 3;
				break;
			}
			*msg = "unknown escape sequence";
			return NULL;
		}
	}
	out[o] = '\0';
	*i = j;
	return out;
}

int pq_lex(struct pq_arena *a, const char *q, struct pq_token **out)
{
	size_t cap = 16, n = 0, i = 0;
	struct pq_token *toks = pq_arena_alloc(a, cap * sizeof(*toks));
	int braces = 0, brackets = 0;

	if (!toks)
		return -ENOMEM;
	for (;;) {
		struct pq_token t = { .pos = 0 };
		const char *msg = NULL;
		char c;

		while (q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r')
			i++;
		if (q[i] == '#') {
			while (q[i] && q[i] != '\n')
				i++;
			continue;
		}
		t.pos = i;
		c = q[i];
		if (!c) {
			t.type = T_EOF;
		} else if (c == '"' || c == '\'' || c == '`') {
			t.type = T_STRING;
			t.str = lex_string(a, q, &i, &msg);
		} else if (is_digit(c) || (c == '.' && is_digit(q[i + 1]))) {
			size_t l = scan_duration(q + i);

			if (l) {
				t.type = T_DURATION;
				if (pq_parse_duration(q + i, l, &t.dur_ms))
					msg = "not a valid duration string";
				i += l;
			} else {
				l = scan_number(q + i);
				if (is_alnum(q[i + l]) || parse_number(q + i, l, &t.num))
					msg = "bad number or duration syntax";
				t.type = T_NUMBER;
				i += l;
			}
		} else if (is_alpha(c) || (c == ':' && !braces && !brackets)) {
			size_t l = 0, k;

			while (is_alnum(q[i + l]) || q[i + l] == ':')
				l++;
			t.type = T_IDENT;
			if (!braces) {
				for (k = 0; k < sizeof(pq_keywords) / sizeof(pq_keywords[0]); k++)
					if (strlen(pq_keywords[k].word) == l &&
					    !strncasecmp(q + i, pq_keywords[k].word, l))
						t.type = pq_keywords[k].tok;
				if ((l == 3 && (!strncasecmp(q + i, "inf", 3) ||
						!strncasecmp(q + i, "nan", 3)))) {
					t.type = T_NUMBER;
					t.num = tolower((unsigned char)c) == 'i' ? INFINITY : NAN;
				}
			}
			i += l;
		} else {
			i++;
			switch (c) {
			case '(':
				t.type = T_LPAREN;
				break;
			case ')':
				t.type = T_RPAREN;
				break;
			case '{':
				t.type = T_LBRACE;
				braces++;
				break;
			case '}':
				t.type = T_RBRACE;
				braces--;
				break;
			case '[':
				t.type = T_LBRACKET;
				brackets++;
				break;
			case ']':
				t.type = T_RBRACKET;
				brackets--;
				break;
			case ',':
				t.type = T_COMMA;
				break;
			case ':':
				t.type = T_COLON;
				break;
			case '@':
				t.type = T_AT;
				break;
			case '+':
				t.type = T_ADD;
				break;
			case '-':
				t.type = T_SUB;
				break;
			case '*':
				t.type = T_MUL;
				break;
			case '/':
				t.type = T_DIV;
				break;
			case '%':
				t.type = T_MOD;
				break;
			case '^':
				t.type = T_POW;
				break;
			case '=':
				t.type = T_ASSIGN;
				if (q[i] == '=') {
					t.type = T_EQLC;
					i++;
				} else if (q[i] == '~') {
					t.type = T_EQL_RE;
					i++;
				}
				break;
			case '!':
				if (q[i] == '=') {
					t.type = T_NEQ;
					i++;
				} else if (q[i] == '~') {
					t.type = T_NEQ_RE;
					i++;
				} else {
					msg = "unexpected character after '!'";
				}
				break;
			case '<':
				t.type = T_LSS;
				if (q[i] == '=') {
					t.type = T_LTE;
					i++;
				}
				break;
			case '>':
				t.type = T_GTR;
				if (q[i] == '=') {
					t.type = T_GTE;
					i++;
				}
				break;
			default:
				msg = "unexpected character";
				break;
			}
		}
		if (msg) {
			char buf[128];

			if (!strcmp(msg, "unexpected character") ||
			    !strcmp(msg, "unexpected character after '!'"))
				snprintf(buf, sizeof(buf), "%s: '%c'", msg,
					 c == '!' ? q[i] ? q[i] : ' ' : c);
			else
				snprintf(buf, sizeof(buf), "%s", msg);
			t.type = T_ERROR;
			t.str = pq_arena_strndup(a, buf, strlen(buf));
		}
		t.len = i - t.pos;
		if (n == cap) {
			struct pq_token *nt = pq_arena_alloc(a, 2 * cap * sizeof(*toks));

			if (!nt)
				return -ENOMEM;
			memcpy(nt, toks, n * sizeof(*toks));
			toks = nt;
			cap *= 2;
		}
		toks[n++] = t;
		if (t.type == T_EOF || t.type == T_ERROR)
			break;
	}
	*out = toks;
	return (int)n;
}
