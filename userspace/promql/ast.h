/* SPDX-License-Identifier: Apache-2.0 */
/*
 * promql internals shared by lexer.c, parser.c, eval.c and functions.c:
 * tokens, the AST, the function table and the evaluator's value model.
 * Nothing here is part of the public promql.h contract.
 */
#ifndef NOVAMON_PROMQL_AST_H
#define NOVAMON_PROMQL_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "promql/promql.h"

/* ---- arena: every AST node and string of one parse lives in one ---- */

struct pq_arena_chunk;

struct pq_arena {
	struct pq_arena_chunk *head;
};

void *pq_arena_alloc(struct pq_arena *a, size_t n);
char *pq_arena_strndup(struct pq_arena *a, const char *s, size_t n);
void pq_arena_free(struct pq_arena *a);

/* ---- lexer ---- */

enum pq_tok {
	T_EOF,
	T_ERROR,
	T_IDENT, /* metric or label name, also with ':' */
	T_NUMBER,
	T_STRING,
	T_DURATION,
	T_LPAREN,
	T_RPAREN,
	T_LBRACE,
	T_RBRACE,
	T_LBRACKET,
	T_RBRACKET,
	T_COMMA,
	T_COLON,
	T_AT,
	T_ASSIGN, /* =  */
	T_EQL_RE, /* =~ */
	T_NEQ_RE, /* !~ */
	/* binary operators, in the order of enum pq_binop */
	T_ADD,
	T_SUB,
	T_MUL,
	T_DIV,
	T_MOD,
	T_POW,
	T_EQLC,
	T_NEQ,
	T_GTR,
	T_LSS,
	T_GTE,
	T_LTE,
	T_AND,
	T_OR,
	T_UNLESS,
	T_ATAN2,
	/* other keywords */
	T_BY,
	T_WITHOUT,
	T_ON,
	T_IGNORING,
	T_GROUP_LEFT,
	T_GROUP_RIGHT,
	T_BOOL,
	T_OFFSET,
	/* aggregators, in the order of enum pq_aggop */
	T_SUM,
	T_AVG,
	T_MIN,
	T_MAX,
	T_COUNT,
	T_GROUP,
	T_STDDEV,
	T_STDVAR,
	T_TOPK,
	T_BOTTOMK,
	T_QUANTILE,
	T_COUNT_VALUES,
};

struct pq_token {
	enum pq_tok type;
	size_t pos; /* byte offset in the query */
	size_t len; /* bytes of source text */
	double num; /* T_NUMBER */
	int64_t dur_ms; /* T_DURATION */
	char *str; /* T_STRING: decoded value (arena); T_ERROR: message */
};

/*
 * Split q into tokens (comments and white space dropped), ending with T_EOF
 * or a single T_ERROR carrying the message. Tokens live in a; returns the
 * count or -ENOMEM.
 */
int pq_lex(struct pq_arena *a, const char *q, struct pq_token **out);
bool pq_tok_is_keyword(enum pq_tok t);
const char *pq_tok_name(enum pq_tok t);
/* Parse a Prometheus duration ("1h30m", "500ms"); -EINVAL if malformed. */
int pq_parse_duration(const char *s, size_t n, int64_t *ms);

/* ---- AST ---- */

enum pq_kind {
	PQ_NUMBER,
	PQ_STRING,
	PQ_VSEL,
	PQ_MSEL,
	PQ_CALL,
	PQ_AGG,
	PQ_BINARY,
	PQ_UNARY,
	PQ_PAREN,
};

enum pq_binop {
	OP_ADD,
	OP_SUB,
	OP_MUL,
	OP_DIV,
	OP_MOD,
	OP_POW,
	OP_EQLC,
	OP_NEQ,
	OP_GTR,
	OP_LSS,
	OP_GTE,
	OP_LTE,
	OP_AND,
	OP_OR,
	OP_UNLESS,
	OP_ATAN2,
};

enum pq_aggop {
	AGG_SUM,
	AGG_AVG,
	AGG_MIN,
	AGG_MAX,
	AGG_COUNT,
	AGG_GROUP,
	AGG_STDDEV,
	AGG_STDVAR,
	AGG_TOPK,
	AGG_BOTTOMK,
	AGG_QUANTILE,
	AGG_COUNT_VALUES,
};

enum pq_card {
	CARD_ONE_TO_ONE,
	CARD_MANY_TO_ONE,
	CARD_ONE_TO_MANY,
	CARD_MANY_TO_MANY,
};

struct pq_func;

struct promql_expr {
	enum pq_kind kind;
	enum promql_type type;
	size_t pos;
	struct pq_arena *arena; /* root node only: owns the whole tree */

	double num; /* PQ_NUMBER */
	char *str; /* PQ_STRING */

	/* PQ_VSEL, PQ_MSEL (the matrix selector keeps its selector in sub) */
	struct tsdb_matcher *matchers;
	size_t nmatchers;
	int64_t offset_ms;
	int64_t range_ms;

	/* PQ_CALL */
	const struct pq_func *func;
	struct promql_expr **args;
	size_t nargs;

	/* PQ_AGG */
	enum pq_aggop agg;
	bool without;
	char **grouping; /* sorted */
	size_t ngrouping;
	struct promql_expr *param;

	/* PQ_BINARY, PQ_UNARY, PQ_PAREN, PQ_AGG, PQ_MSEL: operands */
	enum pq_binop op; /* PQ_BINARY; PQ_UNARY uses OP_ADD / OP_SUB */
	struct promql_expr *lhs, *rhs, *sub;
	bool ret_bool;
	bool matching; /* on/ignoring given */
	bool on;
	enum pq_card card;
	char **match_labels;
	size_t nmatch_labels;
	char **include;
	size_t ninclude;
};

const char *pq_type_name(enum promql_type t);

/* ---- evaluator value model ---- */

/* A label set, sorted by name; strings owned by the evaluator's arena. */
struct pq_labels {
	struct tsdb_label *l;
	size_t n;
};

/* One series over the evaluation steps: v[i] valid when ok[i]. */
struct pq_series {
	struct pq_labels ls;
	double *v;
	uint8_t *ok;
};

/* A scalar (v over steps), vector (series) or string. */
struct pq_value {
	enum promql_type type;
	double *scalar;
	struct pq_series *s;
	size_t ns;
	size_t cap;
	const char *str;
	size_t counted; /* points charged to pq_eval.cur_samples */
};

struct pq_eval {
	const struct promql_engine *eng;
	int64_t start, end, step; /* ms; step 1 for instant queries */
	size_t nsteps;
	int64_t lookback;
	size_t max_samples;
	size_t cur_samples;
	struct pq_arena arena; /* label strings of intermediate results */
	char *err;
	size_t errlen;
};

int pq_errorf(struct pq_eval *ev, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Samples of one series in a range window, stale markers removed. */
struct pq_window {
	const int64_t *t;
	const double *v;
	size_t n;
	const size_t *next_reset; /* rate/increase: index of the next counter
				   * reset at or after each sample, relative to
				   * base (see eval.c); NULL: scan */
	size_t base;
	int64_t ts; /* evaluation time */
	int64_t range_ms;
	int64_t offset_ms;
};

typedef bool (*pq_range_fn)(const struct pq_window *w, double arg, double *out);
/* Returns 0 or -errno (with ev->err set); args are already evaluated. */
typedef int (*pq_inst_fn)(struct pq_eval *ev, const struct promql_expr *call, struct pq_value *args,
			  struct pq_value *out);

struct pq_func {
	const char *name;
	enum promql_type args[5];
	int nargs; /* required */
	int nopt; /* optional trailing ones */
	enum promql_type ret;
	int matrix_arg; /* index of the range vector argument or -1 */
	bool keep_name; /* range functions: keep __name__ (last_over_time) */
	bool resets; /* range function wants next_reset */
	pq_range_fn range_fn;
	pq_inst_fn inst_fn;
};

const struct pq_func *pq_func_lookup(const char *name);
/* true when name is a Prometheus function this engine does not implement */
bool pq_func_known_unsupported(const char *name);

/* helpers shared by eval.c and functions.c */
int pq_value_add_series(struct pq_eval *ev, struct pq_value *val, const struct pq_labels *ls);
void pq_value_release(struct pq_eval *ev, struct pq_value *val);
int pq_labels_cmp(const struct pq_labels *a, const struct pq_labels *b);
uint64_t pq_labels_hash(const struct pq_labels *a);
const char *pq_labels_get(const struct pq_labels *ls, const char *name);
/* Copy ls without the labels in names (and __name__ if drop_name). */
int pq_labels_without(struct pq_eval *ev, const struct pq_labels *ls, const char *const *names,
		      size_t nnames, bool drop_name, struct pq_labels *out);
/* Copy ls and set name=value (value "" deletes). */
/* Copy only the labels in names. */
int pq_labels_keep(struct pq_eval *ev, const struct pq_labels *ls, const char *const *names,
		   size_t nnames, struct pq_labels *out);
int pq_labels_set(struct pq_eval *ev, const struct pq_labels *ls, const char *name,
		  const char *value, struct pq_labels *out);

/*
 * A pool of output series keyed by label set: series with equal labels
 * merge across steps, two values for one label set at one step are the
 * error "vector cannot contain metrics with the same labelset".
 */
struct pq_keymap {
	struct pq_labels *keys;
	size_t nkeys, capkeys;
	size_t *slots; /* key index + 1, 0 empty */
	uint64_t *hash;
	size_t cap;
};

/* Id of label set ls in km (added when new and create). -ENOENT if absent. */
int pq_keymap_get(struct pq_keymap *km, const struct pq_labels *ls, bool create, size_t *id);
void pq_keymap_free(struct pq_keymap *km);

struct pq_pool {
	struct pq_value *out;
	struct pq_keymap km; /* key id == index in out->s */
};

void pq_pool_init(struct pq_pool *p, struct pq_value *out);
/* Index of the series with labels ls in p->out, created empty if new. */
int pq_pool_get(struct pq_eval *ev, struct pq_pool *p, const struct pq_labels *ls, size_t *idx);
/* -EEXIST (message set) if the series already has a value at step. */
int pq_pool_put(struct pq_eval *ev, struct pq_pool *p, size_t idx, size_t step, double v);
void pq_pool_free(struct pq_pool *p);

bool pq_is_stale_nan(double v);
int64_t pq_step_ts(const struct pq_eval *ev, size_t i);
/* Map every point of in through fn (dropping __name__) into a pooled out. */
int pq_map_drop_name(struct pq_eval *ev, struct pq_value *in, struct pq_value *out,
		     double (*fn)(double v, double a, double b), const double *a, const double *b);
double pq_quantile(double q, double *vals, size_t n);
int pq_histogram_quantile(struct pq_eval *ev, const struct promql_expr *call, struct pq_value *args,
			  struct pq_value *out);
int pq_label_replace(struct pq_eval *ev, const struct promql_expr *call, struct pq_value *args,
		     struct pq_value *out);

#endif /* NOVAMON_PROMQL_AST_H */
