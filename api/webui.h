/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webui: the web UI (api/web/) served from the daemon binary itself.
 *
 *   GET /                the single page (api/web/src/index.html)
 *   GET /static/<file>   its modules, style sheet and the vendored uPlot
 *
 * The bytes are compiled in: api/web/embed.py turns the committed files into
 * webui_assets[] at build time, so nothing is read from disk at run time and
 * a running daemon always serves the UI it was built with. Every answer
 * carries a strong ETag (a hash of its bytes, made at build time) and
 * "Cache-Control: no-cache"; a request whose If-None-Match names the current
 * ETag (or is "*") gets 304 with no body. Any other path under /static/ is a
 * 404 with a JSON error, like the server's own.
 *
 * The pages need no token (the browser cannot put one on a navigation): the
 * server lists "/" and "/static/" among its public paths. The UI sends the
 * token the user logs in with on its API calls and WebSockets.
 */
#ifndef NOVAMON_WEBUI_H
#define NOVAMON_WEBUI_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* How many routes webui__routes() fills. */
#define WEBUI_NROUTES 2

/* The paths to pass in http_server_opts.public_paths when auth is on. */
#define WEBUI_PUBLIC_PATHS "/", "/static/"

/*
 * Fill routes[0..max) with the UI's routes (no ctx). Returns WEBUI_NROUTES,
 * -EINVAL for a NULL routes or -ENOSPC when max is too small.
 */
int webui__routes(struct http_route *routes, size_t max);

/*
 * Internals, exposed for tests/unit and the generated table.
 */

/* One embedded file (api/web/embed.py writes the table). */
struct webui_asset {
	const char *path;         /* "/" or "/static/<name>" */
	const char *content_type; /* with charset for text */
	const char *data;         /* len bytes, then a NUL */
	size_t len;
	const char *etag;         /* "\"<hex>\"" */
};

extern const struct webui_asset webui_assets[];
extern const size_t webui_nassets;

/* The asset served at path, or NULL. */
const struct webui_asset *webui_find(const char *path);

/*
 * Whether an If-None-Match header value (NULL or "" when absent) matches
 * etag: "*", or a comma-separated list naming it, weak ("W/") or not, as
 * RFC 9110 13.1.2 compares for GET.
 */
bool webui_etag_matches(const char *if_none_match, const char *etag);

#endif /* NOVAMON_WEBUI_H */
