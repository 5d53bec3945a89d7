/* SPDX-License-Identifier: Apache-2.0 */
/*
 * promql parser: a precedence-climbing parser with the grammar, operator
 * precedence (or < and/unless < comparisons < +- < * / % < ^, ^ right
 * associative, unary minus binding like *) and the type checks of
 * Prometheus 2.42's generated_parser.y / parse.go checkAST. Constructs this
 * engine does not implement (subqueries, @, count_values, atan2, other
 * functions) are errors that name them.
 */
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql/ast.h"
#include "rx.h"

struct pq_parser {
	struct pq_arena *a;
	const char *q;
	struct pq_token *t;
	size_t i;
	char *err;
	size_t errlen;
	bool failed;
};

enum {
	PREC_OR = 1,
	PREC_AND = 2,
	PREC_CMP = 3,
	PREC_ADD = 4,
	PREC_MUL = 5,
	PREC_POW = 6,
};

const char *pq_type_name(enum promql_type t)
{
	switch (t) {
	case PROMQL_SCALAR:
		return "scalar";
	case PROMQL_VECTOR:
		return "instant vector";
	case PROMQL_MATRIX:
		return "range vector";
	case PROMQL_STRING:
		return "string";
	}
	return "unknown";
}

static void *perr(struct pq_parser *p, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record the first error as "line:col: message"; returns NULL. */
static void *perr(struct pq_parser *p, size_t pos, const char *fmt, ...)
{
	size_t line = 1, col = 1, i, n;
	va_list ap;

	if (p->failed || !p->errlen)
		goto out;
	for (i = 0; i < pos && p->q[i]; i++) {
		if (p->q[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	n = (size_t)snprintf(p->err, p->errlen, "%zu:%zu: ", line, col);
	if (n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - n, fmt, ap);
		va_end(ap);
	}
out:
	p->failed = true;
	return NULL;
}

static struct pq_token *peek(struct pq_parser *p)
{
	return &p->t[p->i];
}

static struct pq_token *next(struct pq_parser *p)
{
	struct pq_token *t = &p->t[p->i];

	if (t->type != T_EOF && t->type != T_ERROR)
		p->i++;
	return t;
}

/* "unexpected <token>" with the token's text, as Prometheus words it. */
static void *unexpected(struct pq_parser *p, struct pq_token *t, const char *ctx)
{
	if (t->type == T_ERROR)
		return perr(p, t->pos, "%s", t->str);
	if (t->type == T_EOF)
		return perr(p, t->pos, "unexpected end of input%s%s", ctx ? " " : "",
			    ctx ? ctx : "");
	if (t->type == T_IDENT || t->type == T_NUMBER || t->type == T_DURATION ||
	    t->type == T_STRING || pq_tok_is_keyword(t->type))
		return perr(p, t->pos, "unexpected %s \"%.*s\"%s%s",
			    pq_tok_is_keyword(t->type) ? "keyword" : pq_tok_name(t->type),
			    (int)t->len, p->q + t->pos, ctx ? " " : "", ctx ? ctx : "");
	return perr(p, t->pos, "unexpected %s%s%s", pq_tok_name(t->type), ctx ? " " : "",
		    ctx ? ctx : "");
}

static bool expect(struct pq_parser *p, enum pq_tok type, const char *ctx)
{
	struct pq_token *t = peek(p);

	if (t->type != type) {
		unexpected(p, t, ctx);
		return false;
	}
	next(p);
	return true;
}

static struct promql_expr *node_new(struct pq_parser *p, enum pq_kind kind, size_t pos)
{
	struct promql_expr *e = pq_arena_alloc(p->a, sizeof(*e));

	if (!e)
		return perr(p, pos, "out of memory");
	e->kind = kind;
	e->pos = pos;
	return e;
}

static bool valid_label_name(const char *s, size_t n)
{
	size_t i;

	if (!n)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (i && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "(" [label {"," label} [","]] ")": keywords are fine as label names. */
static bool parse_label_list(struct pq_parser *p, char ***names, size_t *n, const char *ctx)
{
	size_t cap = 8;
	char **v;

	if (!expect(p, T_LPAREN, ctx))
		return false;
	v = pq_arena_alloc(p->a, cap * sizeof(*v));
	if (!v) {
		perr(p, peek(p)->pos, "out of memory");
		return false;
	}
	*n = 0;
	while (peek(p)->type != T_RPAREN) {
		struct pq_token *t = next(p);

		if ((t->type != T_IDENT && !pq_tok_is_keyword(t->type)) ||
		    !valid_label_name(p->q + t->pos, t->len)) {
			unexpected(p, t, "in grouping opts, expected label");
			return false;
		}
		if (*n == cap) {
			char **nv = pq_arena_alloc(p->a, 2 * cap * sizeof(*v));

			if (!nv) {
				perr(p, t->pos, "out of memory");
				return false;
			}
			memcpy(nv, v, *n * sizeof(*v));
			v = nv;
			cap *= 2;
		}
		v[(*n)++] = pq_arena_strndup(p->a, p->q + t->pos, t->len);
		if (peek(p)->type == T_COMMA)
			next(p);
		else if (peek(p)->type != T_RPAREN) {
			unexpected(p, peek(p), "in grouping opts, expected \")\" or \",\"");
			return false;
		}
	}
	next(p);
	qsort(v, *n, sizeof(*v), cmp_str);
	*names = v;
	return true;
}

static bool regex_matches_empty(const char *re, bool *matches, char *msg, size_t msglen)
{
	char e[128];
	size_t l = strlen(re);
	char *anch = malloc(l + 5);
	regex_t rx;
	int rc;

	if (!anch) {
		snprintf(msg, msglen, "out of memory");
		return false;
	}
	snprintf(anch, l + 5, "^(%s)$", re);
	rc = rx_compile(&rx, anch, REG_EXTENDED | REG_NOSUB, e, sizeof(e));
	free(anch);
	if (rc) {
		snprintf(msg, msglen, "invalid regular expression \"%s\": %s", re, e);
		return false;
	}
	*matches = regexec(&rx, "", 0, NULL, 0) == 0;
	regfree(&rx);
	return true;
}

/* name? "{" matchers "}"? — name_tok may be NULL */
static struct promql_expr *parse_selector(struct pq_parser *p, struct pq_token *name_tok,
					  size_t pos)
{
	struct promql_expr *e = node_new(p, PQ_VSEL, pos);
	size_t cap = 8;
	bool nonempty = false;
	size_t i;

	if (!e)
		return NULL;
	e->type = PROMQL_VECTOR;
	e->matchers = pq_arena_alloc(p->a, cap * sizeof(*e->matchers));
	if (!e->matchers)
		return perr(p, pos, "out of memory");
	if (name_tok) {
		e->matchers[0].type = TSDB_MATCH_EQ;
		e->matchers[0].name = TSDB_NAME_LABEL;
		e->matchers[0].value = pq_arena_strndup(p->a, p->q + name_tok->pos, name_tok->len);
		e->nmatchers = 1;
	}
	if (peek(p)->type == T_LBRACE) {
		next(p);
		while (peek(p)->type != T_RBRACE) {
			struct pq_token *ln = next(p), *op, *val;
			struct tsdb_matcher *m;

			if (ln->type != T_IDENT || !valid_label_name(p->q + ln->pos, ln->len))
				return unexpected(p, ln, "in label matching, expected label");
			op = next(p);
			if (op->type != T_ASSIGN && op->type != T_NEQ && op->type != T_EQL_RE &&
			    op->type != T_NEQ_RE)
				return unexpected(
					p, op,
					"in label matching, expected one of \"=\", \"!=\", \"=~\" or \"!~\"");
			val = next(p);
			if (val->type != T_STRING)
				return unexpected(p, val, "in label matching, expected string");
			if (e->nmatchers == cap) {
				struct tsdb_matcher *nm =
					pq_arena_alloc(p->a, 2 * cap * sizeof(*nm));

				if (!nm)
					return perr(p, ln->pos, "out of memory");
				memcpy(nm, e->matchers, e->nmatchers * sizeof(*nm));
				e->matchers = nm;
				cap *= 2;
			}
			m = &e->matchers[e->nmatchers++];
			m->name = pq_arena_strndup(p->a, p->q + ln->pos, ln->len);
			m->value = val->str;
			m->type = op->type == T_ASSIGN ? TSDB_MATCH_EQ :
				  op->type == T_NEQ    ? TSDB_MATCH_NEQ :
				  op->type == T_EQL_RE ? TSDB_MATCH_RE :
							 TSDB_MATCH_NRE;
			if (name_tok && !strcmp(m->name, TSDB_NAME_LABEL))
				return perr(p, ln->pos,
					    "metric name must not be set twice: \"%s\" or \"%s\"",
					    e->matchers[0].value, m->value);
			if (peek(p)->type == T_COMMA)
				next(p);
			else if (peek(p)->type != T_RBRACE)
				return unexpected(p, peek(p),
						  "in label matching, expected \",\" or \"}\"");
		}
		next(p);
	}
	for (i = 0; i < e->nmatchers; i++) {
		struct tsdb_matcher *m = &e->matchers[i];
		bool empty;
		char msg[256];

		switch (m->type) {
		case TSDB_MATCH_EQ:
			empty = !*m->value;
			break;
		case TSDB_MATCH_NEQ:
			empty = *m->value != '\0';
			break;
		default:
			if (!regex_matches_empty(m->value, &empty, msg, sizeof(msg)))
				return perr(p, pos, "%s", msg);
			if (m->type == TSDB_MATCH_NRE)
				empty = !empty;
			break;
		}
		if (!empty)
			nonempty = true;
	}
	if (!nonempty)
		return perr(p, pos, "vector selector must contain at least one non-empty matcher");
	return e;
}

static struct promql_expr *parse_expr(struct pq_parser *p, int minprec);

static struct promql_expr *parse_call(struct pq_parser *p, struct pq_token *name)
{
	char fname[64];
	const struct pq_func *f;
	struct promql_expr *e, *args[8];
	size_t n = 0, i;

	snprintf(fname, sizeof(fname), "%.*s", (int)(name->len < 63 ? name->len : 63),
		 p->q + name->pos);
	f = pq_func_lookup(fname);
	if (!f) {
		if (pq_func_known_unsupported(fname))
			return perr(p, name->pos, "function \"%s\" is not supported", fname);
		return perr(p, name->pos, "unknown function with name \"%s\"", fname);
	}
	next(p); /* ( */
	while (peek(p)->type != T_RPAREN) {
		struct promql_expr *a = parse_expr(p, 0);

		if (!a)
			return NULL;
		if (n == 8)
			return perr(p, a->pos, "too many arguments in call to \"%s\"", fname);
		args[n++] = a;
		if (peek(p)->type == T_COMMA)
			next(p);
		else if (peek(p)->type != T_RPAREN)
			return unexpected(p, peek(p),
					  "in call to function, expected \",\" or \")\"");
	}
	next(p);
	if (n < (size_t)f->nargs || n > (size_t)(f->nargs + f->nopt)) {
		if (f->nopt)
			return perr(p, name->pos,
				    "expected %s %d argument(s) in call to \"%s\", got %zu",
				    n < (size_t)f->nargs ? "at least" : "at most",
				    n < (size_t)f->nargs ? f->nargs : f->nargs + f->nopt, fname, n);
		return perr(p, name->pos, "expected %d argument(s) in call to \"%s\", got %zu",
			    f->nargs, fname, n);
	}
	for (i = 0; i < n; i++)
		if (args[i]->type != f->args[i])
			return perr(p, args[i]->pos,
				    "expected type %s in call to function \"%s\", got %s",
				    pq_type_name(f->args[i]), fname, pq_type_name(args[i]->type));
	e = node_new(p, PQ_CALL, name->pos);
	if (!e)
		return NULL;
	e->func = f;
	e->type = f->ret;
	e->nargs = n;
	e->args = pq_arena_alloc(p->a, (n ? n : 1) * sizeof(*e->args));
	if (!e->args)
		return perr(p, name->pos, "out of memory");
	memcpy(e->args, args, n * sizeof(*args));
	return e;
}

static struct promql_expr *parse_agg(struct pq_parser *p)
{
	struct pq_token *kw = next(p);
	struct promql_expr *e = node_new(p, PQ_AGG, kw->pos), *args[2];
	bool grouped = false;
	size_t n = 0;
	int want;

	if (!e)
		return NULL;
	e->agg = (enum pq_aggop)(kw->type - T_SUM);
	e->type = PROMQL_VECTOR;
	if (e->agg == AGG_COUNT_VALUES)
		return perr(p, kw->pos, "aggregation \"count_values\" is not supported");
	if (peek(p)->type == T_BY || peek(p)->type == T_WITHOUT) {
		e->without = next(p)->type == T_WITHOUT;
		if (!parse_label_list(p, &e->grouping, &e->ngrouping, "in grouping opts"))
			return NULL;
		grouped = true;
	}
	if (!expect(p, T_LPAREN, "in aggregation, expected \"(\""))
		return NULL;
	while (peek(p)->type != T_RPAREN) {
		struct promql_expr *a = parse_expr(p, 0);

		if (!a)
			return NULL;
		if (n == 2)
			return perr(p, a->pos, "too many arguments for aggregate expression");
		args[n++] = a;
		if (peek(p)->type == T_COMMA)
			next(p);
		else if (peek(p)->type != T_RPAREN)
			return unexpected(p, peek(p), "in aggregation, expected \",\" or \")\"");
	}
	next(p);
	if (!grouped && (peek(p)->type == T_BY || peek(p)->type == T_WITHOUT)) {
		e->without = next(p)->type == T_WITHOUT;
		if (!parse_label_list(p, &e->grouping, &e->ngrouping, "in grouping opts"))
			return NULL;
	}
	want = (e->agg == AGG_TOPK || e->agg == AGG_BOTTOMK || e->agg == AGG_QUANTILE) ? 2 : 1;
	if ((int)n != want)
		return perr(
			p, kw->pos,
			"wrong number of arguments for aggregate expression provided, expected %d, got %zu",
			want, n);
	e->sub = args[n - 1];
	if (want == 2) {
		e->param = args[0];
		if (e->param->type != PROMQL_SCALAR)
			return perr(p, e->param->pos,
				    "expected type scalar in aggregation parameter, got %s",
				    pq_type_name(e->param->type));
	}
	if (e->sub->type != PROMQL_VECTOR)
		return perr(p, e->sub->pos,
			    "expected type instant vector in aggregation expression, got %s",
			    pq_type_name(e->sub->type));
	return e;
}

static struct promql_expr *parse_primary(struct pq_parser *p)
{
	struct pq_token *t = peek(p);
	struct promql_expr *e;

	switch (t->type) {
	case T_NUMBER:
		next(p);
		e = node_new(p, PQ_NUMBER, t->pos);
		if (e) {
			e->type = PROMQL_SCALAR;
			e->num = t->num;
		}
		return e;
	case T_STRING:
		next(p);
		e = node_new(p, PQ_STRING, t->pos);
		if (e) {
			e->type = PROMQL_STRING;
			e->str = t->str;
		}
		return e;
	case T_LPAREN: {
		struct promql_expr *in;

		next(p);
		in = parse_expr(p, 0);
		if (!in)
			return NULL;
		if (!expect(p, T_RPAREN, "in paren expression, expected \")\""))
			return NULL;
		e = node_new(p, PQ_PAREN, t->pos);
		if (e) {
			e->sub = in;
			e->type = in->type;
		}
		return e;
	}
	case T_LBRACE:
		return parse_selector(p, NULL, t->pos);
	case T_IDENT:
		next(p);
		if (peek(p)->type == T_LPAREN)
			return parse_call(p, t);
		return parse_selector(p, t, t->pos);
	case T_DURATION:
		return perr(p, t->pos, "unexpected duration \"%.*s\"", (int)t->len, p->q + t->pos);
	default:
		if (t->type >= T_SUM && t->type <= T_COUNT_VALUES)
			return parse_agg(p);
		return unexpected(p, t, NULL);
	}
}

/* [range], [a:b] (subquery, refused), offset d, @ t (refused) */
static struct promql_expr *parse_postfix(struct pq_parser *p, struct promql_expr *e)
{
	for (;;) {
		struct pq_token *t = peek(p);

		if (t->type == T_AT)
			return perr(p, t->pos, "the @ modifier is not supported");
		if (t->type == T_LBRACKET) {
			struct pq_token *d;
			struct promql_expr *m;

			next(p);
			d = peek(p);
			if (d->type == T_COLON ||
			    (d->type == T_DURATION && p->t[p->i + 1].type == T_COLON))
				return perr(p, t->pos, "subqueries are not supported");
			if (d->type != T_DURATION)
				return unexpected(p, d, "in range selector, expected duration");
			next(p);
			if (peek(p)->type == T_COLON)
				return perr(p, t->pos, "subqueries are not supported");
			if (!expect(p, T_RBRACKET, "in range selector, expected \"]\""))
				return NULL;
			if (e->kind != PQ_VSEL)
				return perr(p, t->pos, "ranges only allowed for vector selectors");
			if (e->offset_ms)
				return perr(p, t->pos, "no offset modifiers allowed before range");
			if (d->dur_ms <= 0)
				return perr(p, d->pos, "range must be greater than 0");
			m = node_new(p, PQ_MSEL, e->pos);
			if (!m)
				return NULL;
			m->type = PROMQL_MATRIX;
			m->sub = e;
			m->range_ms = d->dur_ms;
			e = m;
			continue;
		}
		if (t->type == T_OFFSET) {
			struct promql_expr *vs = e->kind == PQ_MSEL ? e->sub : e;
			struct pq_token *d;
			bool neg = false;

			next(p);
			if (vs->kind != PQ_VSEL)
				return perr(
					p, t->pos,
					"offset modifier must be preceded by an instant vector selector or range vector selector or a subquery");
			if (peek(p)->type == T_SUB || peek(p)->type == T_ADD)
				neg = next(p)->type == T_SUB;
			d = next(p);
			if (d->type != T_DURATION)
				return unexpected(p, d, "in offset, expected duration");
			if (vs->offset_ms)
				return perr(p, t->pos, "offset may not be set multiple times");
			vs->offset_ms = neg ? -d->dur_ms : d->dur_ms;
			continue;
		}
		return e;
	}
}

static struct promql_expr *parse_unary(struct pq_parser *p)
{
	struct pq_token *t = peek(p);
	struct promql_expr *e, *in;

	if (t->type == T_ADD || t->type == T_SUB) {
		next(p);
		/* unary binds like '*': only ^ binds tighter */
		in = parse_expr(p, PREC_POW);
		if (!in)
			return NULL;
		if (in->type != PROMQL_SCALAR && in->type != PROMQL_VECTOR)
			return perr(
				p, t->pos,
				"unary expression only allowed on expressions of type scalar or instant vector, got %s",
				pq_type_name(in->type));
		if (in->kind == PQ_NUMBER) {
			if (t->type == T_SUB)
				in->num = -in->num;
			in->pos = t->pos;
			return in;
		}
		e = node_new(p, PQ_UNARY, t->pos);
		if (!e)
			return NULL;
		e->op = t->type == T_SUB ? OP_SUB : OP_ADD;
		e->sub = in;
		e->type = in->type;
		return e;
	}
	e = parse_primary(p);
	if (!e)
		return NULL;
	return parse_postfix(p, e);
}

static int binop_prec(enum pq_tok t)
{
	switch (t) {
	case T_OR:
		return PREC_OR;
	case T_AND:
	case T_UNLESS:
		return PREC_AND;
	case T_EQLC:
	case T_NEQ:
	case T_GTR:
	case T_LSS:
	case T_GTE:
	case T_LTE:
		return PREC_CMP;
	case T_ADD:
	case T_SUB:
		return PREC_ADD;
	case T_MUL:
	case T_DIV:
	case T_MOD:
	case T_ATAN2:
		return PREC_MUL;
	case T_POW:
		return PREC_POW;
	default:
		return 0;
	}
}

static bool is_cmp(enum pq_binop op)
{
	return op >= OP_EQLC && op <= OP_LTE;
}

static bool is_set(enum pq_binop op)
{
	return op == OP_AND || op == OP_OR || op == OP_UNLESS;
}

static const char *binop_name(enum pq_binop op)
{
	static const char *const n[] = { "+", "-", "*",	 "/",  "%",   "^",  "==",     "!=",
					 ">", "<", ">=", "<=", "and", "or", "unless", "atan2" };
	return n[op];
}

static struct promql_expr *parse_expr(struct pq_parser *p, int minprec)
{
	struct promql_expr *lhs = parse_unary(p);

	while (lhs) {
		struct pq_token *t = peek(p);
		int prec = binop_prec(t->type);
		struct promql_expr *e, *rhs;
		size_t i, j;

		if (!prec || prec < minprec)
			break;
		next(p);
		e = node_new(p, PQ_BINARY, t->pos);
		if (!e)
			return NULL;
		e->op = (enum pq_binop)(t->type - T_ADD);
		e->card = CARD_ONE_TO_ONE;
		if (e->op == OP_ATAN2)
			return perr(p, t->pos, "operator \"atan2\" is not supported");
		if (peek(p)->type == T_BOOL) {
			next(p);
			e->ret_bool = true;
		}
		if (peek(p)->type == T_ON || peek(p)->type == T_IGNORING) {
			e->matching = true;
			e->on = next(p)->type == T_ON;
			if (!parse_label_list(p, &e->match_labels, &e->nmatch_labels,
					      "in grouping opts"))
				return NULL;
			if (peek(p)->type == T_GROUP_LEFT || peek(p)->type == T_GROUP_RIGHT) {
				e->card = next(p)->type == T_GROUP_LEFT ? CARD_MANY_TO_ONE :
									  CARD_ONE_TO_MANY;
				if (peek(p)->type == T_LPAREN &&
				    !parse_label_list(p, &e->include, &e->ninclude,
						      "in grouping opts"))
					return NULL;
			}
		}
		/* ^ is right associative, everything else left */
		rhs = parse_expr(p, prec == PREC_POW ? prec : prec + 1);
		if (!rhs)
			return NULL;
		e->lhs = lhs;
		e->rhs = rhs;
		if (e->ret_bool && !is_cmp(e->op))
			return perr(p, t->pos,
				    "bool modifier can only be used on comparison operators");
		if (is_cmp(e->op) && !e->ret_bool && lhs->type == PROMQL_SCALAR &&
		    rhs->type == PROMQL_SCALAR)
			return perr(p, t->pos,
				    "comparisons between scalars must use BOOL modifier");
		if (is_set(e->op) && e->card == CARD_ONE_TO_ONE)
			e->card = CARD_MANY_TO_MANY;
		for (i = 0; e->on && i < e->nmatch_labels; i++)
			for (j = 0; j < e->ninclude; j++)
				if (!strcmp(e->match_labels[i], e->include[j]))
					return perr(
						p, t->pos,
						"label \"%s\" must not occur in ON and GROUP clause at once",
						e->include[j]);
		if (lhs->type != PROMQL_SCALAR && lhs->type != PROMQL_VECTOR)
			return perr(
				p, lhs->pos,
				"binary expression must contain only scalar and instant vector types");
		if (rhs->type != PROMQL_SCALAR && rhs->type != PROMQL_VECTOR)
			return perr(
				p, rhs->pos,
				"binary expression must contain only scalar and instant vector types");
		if (lhs->type != PROMQL_VECTOR || rhs->type != PROMQL_VECTOR) {
			if (e->matching && e->nmatch_labels)
				return perr(p, t->pos,
					    "vector matching only allowed between instant vectors");
			e->matching = false;
		} else if (is_set(e->op)) {
			if (e->card == CARD_ONE_TO_MANY || e->card == CARD_MANY_TO_ONE)
				return perr(p, t->pos, "no grouping allowed for \"%s\" operation",
					    binop_name(e->op));
		}
		if ((lhs->type == PROMQL_SCALAR || rhs->type == PROMQL_SCALAR) && is_set(e->op))
			return perr(p, t->pos,
				    "set operator \"%s\" not allowed in binary scalar expression",
				    binop_name(e->op));
		e->type = lhs->type == PROMQL_SCALAR && rhs->type == PROMQL_SCALAR ? PROMQL_SCALAR :
										     PROMQL_VECTOR;
		lhs = e;
	}
	return lhs;
}

static struct promql_expr *parse_root(const char *q, char *err, size_t errlen, struct pq_parser *p)
{
	struct pq_arena *a = calloc(1, sizeof(*a));
	struct promql_expr *e = NULL;
	int n;

	memset(p, 0, sizeof(*p));
	if (err && errlen)
		err[0] = '\0';
	if (!a) {
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	p->a = a;
	p->q = q;
	p->err = err;
	p->errlen = err ? errlen : 0;
	n = pq_lex(a, q, &p->t);
	if (n < 0) {
		perr(p, 0, "out of memory");
		goto fail;
	}
	if (peek(p)->type == T_EOF) {
		perr(p, 0, "no expression found in input");
		goto fail;
	}
	e = parse_expr(p, 0);
	if (!e)
		goto fail;
	if (peek(p)->type != T_EOF) {
		unexpected(p, peek(p), NULL);
		goto fail;
	}
	e->arena = a; /* the root owns the arena */
	return e;
fail:
	pq_arena_free(a);
	free(a);
	errno = EINVAL;
	return NULL;
}

struct promql_expr *promql_parse(const char *q, char *err, size_t errlen)
{
	struct pq_parser p;

	if (!q) {
		snprintf(err, errlen, "no expression");
		errno = EINVAL;
		return NULL;
	}
	return parse_root(q, err, errlen, &p);
}

void promql_expr__free(struct promql_expr *e)
{
	struct pq_arena *a;

	if (!e || !e->arena)
		return;
	a = e->arena;
	pq_arena_free(a);
	free(a);
}

int promql_parse_selector(const char *s, struct promql_expr **expr, struct tsdb_matcher *m,
			  size_t max, char *err, size_t errlen)
{
	struct promql_expr *e = promql_parse(s, err, errlen);

	*expr = NULL;
	if (!e)
		return -EINVAL;
	if (e->kind != PQ_VSEL || e->offset_ms) {
		snprintf(err, errlen, "1:1: expected a series selector");
		promql_expr__free(e);
		return -EINVAL;
	}
	if (e->nmatchers > max) {
		snprintf(err, errlen, "too many matchers (%zu, at most %zu)", e->nmatchers, max);
		promql_expr__free(e);
		return -EINVAL;
	}
	memcpy(m, e->matchers, e->nmatchers * sizeof(*m));
	*expr = e;
	return (int)e->nmatchers;
}
