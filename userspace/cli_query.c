/* SPDX-License-Identifier: Apache-2.0 */
/*
 * novamon query: run a PromQL query against a running daemon's Prometheus
 * API (/api/v1/query, /api/v1/query_range, or /api/metrics/query for a range
 * without --step, which picks the step) and print a table or the raw JSON.
 * Exit status: 0 success, 1 daemon unreachable or query rejected, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "httpc.h"

#define QUERY_DEFAULT_URL "http://127.0.0.1:9477"
#define QUERY_TIMEOUT_MS 120000

struct query_opts {
	const char *url;
	const char *time;
	const char *start;
	const char *end;
	const char *step;
	const char *expr;
	int json;
};

static void query_usage(FILE *f)
{
	fprintf(f, "Usage: novamon query [OPTIONS] 'EXPR'\n"
		   "Run a PromQL query against a running novamon daemon.\n"
		   "\n"
		   "  -u, --url URL       the daemon (default " QUERY_DEFAULT_URL ")\n"
		   "  -t, --time T        evaluation time of an instant query (default now)\n"
		   "  -s, --start S       start of a range query\n"
		   "  -e, --end E         end of a range query\n"
		   "  -p, --step STEP     range query resolution (15s, 1m, or seconds;\n"
		   "                      default: (end - start) / 250, at least 1s)\n"
		   "  -j, --json          print the server's JSON answer as it is\n"
		   "  -h, --help          show this help\n"
		   "\n"
		   "Times are RFC 3339 (2026-11-22T08:00:00Z) or unix seconds.\n"
		   "Exit status: 0 success, 1 daemon unreachable or query failed, 2 usage.\n");
}

/* Returns 0, 1 after --help, or -EINVAL after a message. */
static int query_parse_args(struct query_opts *o, int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "url", required_argument, NULL, 'u' },   { "time", required_argument, NULL, 't' },
		{ "start", required_argument, NULL, 's' }, { "end", required_argument, NULL, 'e' },
		{ "step", required_argument, NULL, 'p' },  { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },	   { NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->url = QUERY_DEFAULT_URL;
	optind = 0;
	while ((c = getopt_long(argc, argv, "u:t:s:e:p:jh", long_opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			o->url = optarg;
			break;
		case 't':
			o->time = optarg;
			break;
		case 's':
			o->start = optarg;
			break;
		case 'e':
			o->end = optarg;
			break;
		case 'p':
			o->step = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'h':
			query_usage(stdout);
			return 1;
		default:
			query_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "novamon query: %s\n\n",
			optind >= argc ? "missing EXPR" : "one EXPR only (quote it)");
		query_usage(stderr);
		return -EINVAL;
	}
	o->expr = argv[optind];
	if (strncasecmp(o->url, "http://", 7)) {
		fprintf(stderr, "novamon query: --url %s: only http:// URLs are supported\n",
			o->url);
		return -EINVAL;
	}
	if (!!o->start != !!o->end || (o->step && !o->start) || (o->time && o->start)) {
		fprintf(stderr, "novamon query: a range query needs --start and --end (and "
				"optionally --step), without --time\n");
		return -EINVAL;
	}
	return 0;
}

/* Append "&name=" and the percent-encoded value. Returns 0 or -ENOMEM. */
static int query_add(char **url, size_t *len, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t need = *len + strlen(name) + 2 + 3 * strlen(value) + 1;
	char *p = realloc(*url, need);
	size_t w;

	if (!p)
		return -ENOMEM;
	*url = p;
	w = *len;
	w += (size_t)sprintf(p + w, "%s%s=", strchr(p, '?') ? "&" : "?", name);
	for (; *value; value++) {
		unsigned char c = (unsigned char)*value;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			p[w++] = (char)c;
		} else {
			p[w++] = '%';
			p[w++] = hex[c >> 4];
			p[w++] = hex[c & 15];
		}
	}
	p[w] = '\0';
	*len = w;
	return 0;
}

static char *query_build_url(const struct query_opts *o)
{
	const char *path = o->start ? (o->step ? "/api/v1/query_range" : "/api/metrics/query") :
				      "/api/v1/query";
	size_t blen = strlen(o->url);
	char *url;
	size_t len;
	int err;

	while (blen && o->url[blen - 1] == '/')
		blen--;
	url = malloc(blen + strlen(path) + 1);
	if (!url)
		return NULL;
	memcpy(url, o->url, blen);
	strcpy(url + blen, path);
	len = strlen(url);
	err = query_add(&url, &len, "query", o->expr);
	if (!err && o->time)
		err = query_add(&url, &len, "time", o->time);
	if (!err && o->start)
		err = query_add(&url, &len, "start", o->start);
	if (!err && o->end)
		err = query_add(&url, &len, "end", o->end);
	if (!err && o->step)
		err = query_add(&url, &len, "step", o->step);
	if (err) {
		free(url);
		return NULL;
	}
	return url;
}

/* metric{a="b", c="d"} */
static void query_print_metric(json_t *metric)
{
	const char *name = json_string_value(json_object_get(metric, "__name__"));
	const char *key;
	json_t *val;
	int n = 0;

	printf("%s{", name ? name : "");
	json_object_foreach(metric, key, val)
	{
		if (!strcmp(key, "__name__"))
			continue;
		const char *v = json_string_value(val);

		printf("%s%s=\"", n++ ? ", " : "", key);
		for (; v && *v; v++) {
			if (*v == '"' || *v == '\\')
				putchar('\\');
			if (*v == '\n')
				fputs("\\n", stdout);
			else
				putchar(*v);
		}
		putchar('"');
	}
	printf("}");
}

static void query_print_point(json_t *pt)
{
	printf("%.3f  %s", json_number_value(json_array_get(pt, 0)),
	       json_string_value(json_array_get(pt, 1)));
}

/* Print data.result readably. Returns 0, or -EPROTO for an unexpected shape. */
static int query_print(json_t *data)
{
	const char *type = json_string_value(json_object_get(data, "resultType"));
	json_t *result = json_object_get(data, "result"), *item, *pt;
	size_t i, j;

	if (!type || !result)
		return -EPROTO;
	if (!strcmp(type, "scalar") || !strcmp(type, "string")) {
		printf("%s\n", json_string_value(json_array_get(result, 1)));
		return 0;
	}
	if (!json_is_array(result))
		return -EPROTO;
	if (!json_array_size(result))
		printf("(empty result)\n");
	json_array_foreach(result, i, item)
	{
		query_print_metric(json_object_get(item, "metric"));
		if (!strcmp(type, "vector")) {
			printf("  %s\n", json_string_value(json_array_get(
						 json_object_get(item, "value"), 1)));
			continue;
		}
		printf("\n");
		json_array_foreach(json_object_get(item, "values"), j, pt)
		{
			printf("  ");
			query_print_point(pt);
			printf("\n");
		}
	}
	return 0;
}

int cli_query(int argc, char **argv)
{
	struct query_opts o;
	json_t *root = NULL;
	json_error_t jerr;
	char *url = NULL, *body = NULL;
	char err[512];
	size_t len = 0;
	int status = 0, rc, ret = 1;

	rc = query_parse_args(&o, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 2;
	url = query_build_url(&o);
	if (!url) {
		fprintf(stderr, "novamon query: out of memory\n");
		return 1;
	}
	rc = httpc_get(url, QUERY_TIMEOUT_MS, &status, &body, &len, err, sizeof(err));
	if (rc == -EINVAL) {
		fprintf(stderr, "novamon query: --url: %s\n", err);
		ret = 2;
		goto out;
	}
	if (rc) {
		fprintf(stderr, "novamon query: %s; is `novamon run` running?\n", err);
		goto out;
	}
	root = json_loadb(body, len, 0, &jerr);
	if (o.json && root) {
		fwrite(body, 1, len, stdout);
		if (len && body[len - 1] != '\n')
			fputc('\n', stdout);
	}
	if (!root || !json_is_object(root)) {
		fprintf(stderr,
			"novamon query: the daemon answered HTTP %d without a JSON body%s%.200s\n",
			status, len ? ": " : "", body);
		goto out;
	}
	if (status != 200 ||
	    strcmp(json_string_value(json_object_get(root, "status")) ?: "", "success")) {
		const char *msg = json_string_value(json_object_get(root, "error"));
		const char *type = json_string_value(json_object_get(root, "errorType"));

		fprintf(stderr, "novamon query: %s (HTTP %d%s%s)\n", msg ? msg : "query failed",
			status, type ? ", " : "", type ? type : "");
		goto out;
	}
	if (!o.json && query_print(json_object_get(root, "data"))) {
		fprintf(stderr, "novamon query: unexpected answer: %.200s\n", body);
		goto out;
	}
	ret = 0;
out:
	json_decref(root);
	free(body);
	free(url);
	return ret;
}
