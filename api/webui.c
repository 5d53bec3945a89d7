/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webui: serve the embedded web UI (see webui.h). The table of files comes
 * from api/web/embed.py; this file only looks paths up and answers, on the
 * server's handler threads. The body is a copy because the server frees
 * what a handler returns.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "webui.h"

const struct webui_asset *webui_find(const char *path)
{
	size_t i;

	if (!path)
		return NULL;
	for (i = 0; i < webui_nassets; i++)
		if (!strcmp(webui_assets[i].path, path))
			return &webui_assets[i];
	return NULL;
}

bool webui_etag_matches(const char *if_none_match, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = if_none_match;

	if (!p)
		return false;
	while (*p) {
		const char *tok;
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		if (*p == '*')
			return true;
		if (!strncmp(p, "W/", 2))
			p += 2; /* weak comparison: the opaque tags must match */
		tok = p;
		if (*p == '"') {
			/* a quoted entity-tag: up to the closing quote */
			p = strchr(p + 1, '"');
			if (!p)
				return false;
			p++;
		} else {
			while (*p && *p != ',' && *p != ' ' && *p != '\t')
				p++;
		}
		n = (size_t)(p - tok);
		if (n == elen && !memcmp(tok, etag, n))
			return true;
	}
	return false;
}

/* GET / and GET /static/<file> */
static int webui_h_get(const struct http_request *req, struct http_response *resp, void *ctx)
{
	const struct webui_asset *a = webui_find(req->path);

	(void)ctx;
	if (!a)
		return http_error(resp, 404, "not_found", "no such file: %.200s", req->path);
	resp->etag = a->etag;
	resp->cache_control = "no-cache";
	if (webui_etag_matches(req->if_none_match, a->etag)) {
		resp->status = 304;
		return 0;
	}
	resp->body = malloc(a->len ? a->len : 1);
	if (!resp->body)
		return -ENOMEM;
	memcpy(resp->body, a->data, a->len);
	resp->body_len = a->len;
	resp->status = 200;
	resp->content_type = a->content_type;
	return 0;
}

int webui__routes(struct http_route *routes, size_t max)
{
	const struct http_route all[WEBUI_NROUTES] = {
		{ "GET", "/", webui_h_get, NULL },
		{ "GET", "/static/", webui_h_get, NULL },
	};

	if (!routes)
		return -EINVAL;
	if (max < WEBUI_NROUTES)
		return -ENOSPC;
	memcpy(routes, all, sizeof(all));
	return WEBUI_NROUTES;
}
