/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "span_file.h"

struct span_file {
	FILE *f;
	bool is_stdout;
};

struct span_file *span_file__open(const char *path)
{
	struct span_file *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	if (!strcmp(path, "-")) {
		f->f = stdout;
		f->is_stdout = true;
		return f;
	}
	f->f = fopen(path, "ae");
	if (!f->f) {
		int err = errno;

		free(f);
		errno = err;
		return NULL;
	}
	return f;
}

struct span_file *span_file__close(struct span_file *f)
{
	if (!f)
		return NULL;
	if (f->is_stdout)
		fflush(f->f);
	else
		fclose(f->f);
	free(f);
	return NULL;
}

void span_file_json_string(FILE *out, const char *s)
{
	const unsigned char *p;

	fputc('"', out);
	for (p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		default:
			if (*p < 0x20)
				fprintf(out, "\\u%04x", *p);
			else
				fputc(*p, out);
		}
	}
	fputc('"', out);
}

static void put_hex(FILE *out, const char *key, const uint8_t *id, size_t n, bool zero_is_empty)
{
	bool zero = true;
	size_t i;

	for (i = 0; i < n; i++)
		zero &= !id[i];
	fprintf(out, ",\"%s\":\"", key);
	if (!(zero && zero_is_empty))
		for (i = 0; i < n; i++)
			fprintf(out, "%02x", id[i]);
	fputc('"', out);
}

static void put_attrs(FILE *out, const struct span_attr *attrs, unsigned int n)
{
	unsigned int i;

	fputs(",\"attributes\":{", out);
	for (i = 0; i < n; i++) {
		const struct span_attr *a = &attrs[i];

		if (i)
			fputc(',', out);
		span_file_json_string(out, a->key);
		fputc(':', out);
		switch (a->type) {
		case SPAN_ATTR_STR:
			span_file_json_string(out, a->s);
			break;
		case SPAN_ATTR_INT:
			fprintf(out, "%" PRId64, a->i);
			break;
		case SPAN_ATTR_DOUBLE:
			if (isfinite(a->d))
				fprintf(out, "%.17g", a->d);
			else
				fputs("null", out);
			break;
		default:
			fputs(a->b ? "true" : "false", out);
			break;
		}
	}
	fputc('}', out);
}

int span_file__write_span(struct span_file *f, const struct span *s)
{
	FILE *out = f->f;

	fputs("{\"type\":\"span\"", out);
	put_hex(out, "trace_id", s->trace_id, 16, false);
	put_hex(out, "span_id", s->span_id, 8, false);
	put_hex(out, "parent_span_id", s->parent_span_id, 8, true);
	fputs(",\"name\":", out);
	span_file_json_string(out, s->name);
	fprintf(out, ",\"kind\":%u,\"start_ns\":%" PRIu64 ",\"end_ns\":%" PRIu64 ",\"status\":%u",
		s->kind, s->start_ns, s->end_ns, s->status);
	fputs(",\"status_message\":", out);
	span_file_json_string(out, s->status_message);
	put_attrs(out, s->attrs, s->nattrs < SPAN_MAX_ATTRS ? s->nattrs : SPAN_MAX_ATTRS);
	fputs("}\n", out);
	return ferror(out) ? -EIO : 0;
}

int span_file__write_log(struct span_file *f, const struct log_record *r)
{
	FILE *out = f->f;

	fprintf(out, "{\"type\":\"log\",\"time_ns\":%" PRIu64 ",\"severity\":%u", r->time_ns,
		r->severity);
	put_hex(out, "trace_id", r->trace_id, 16, !r->has_trace);
	put_hex(out, "span_id", r->span_id, 8, !r->has_trace);
	fputs(",\"body\":", out);
	span_file_json_string(out, r->body);
	put_attrs(out, r->attrs, r->nattrs < SPAN_MAX_ATTRS ? r->nattrs : SPAN_MAX_ATTRS);
	fputs("}\n", out);
	return ferror(out) ? -EIO : 0;
}

int span_file__flush(struct span_file *f)
{
	return fflush(f->f) ? -errno : 0;
}

static void sink_span(void *ctx, const struct span *s)
{
	span_file__write_span(ctx, s);
}

static void sink_log(void *ctx, const struct log_record *r)
{
	span_file__write_log(ctx, r);
}

static void sink_flush(void *ctx)
{
	span_file__flush(ctx);
}

struct spans_sink span_file__sink(struct span_file *f)
{
	return (struct spans_sink){
		.name = "file",
		.span = sink_span,
		.log = sink_log,
		.flush = sink_flush,
		.ctx = f,
	};
}
