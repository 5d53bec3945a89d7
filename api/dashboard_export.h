/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dashboard_export: a dashboard as a file.
 *
 *   JSON  the document as GET shows it less owner, version and times; POST it
 *         to /api/dashboards to re-import (same id when free).
 *   PNG   server-side rendering with cairo: a title with the time range, and
 *   PDF   the widgets on the dashboard's 12-column grid, each drawing the data
 *         its query returned for the range: line, area (stacked) and bar
 *         charts with axes, a heatmap of series x time, gauges, stat, status
 *         and progress values coloured by the thresholds, and tables, alert
 *         lists, topology and log streams as text rows (labels and last value).
 *
 * Rendering only reads its inputs and allocates its own surface, so it may run
 * on several HTTP handler threads at once.
 */
#ifndef NOVAMON_DASHBOARD_EXPORT_H
#define NOVAMON_DASHBOARD_EXPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "promql/promql.h"

#define DASHBOARD_EXPORT_WIDTH 1200 /* default width, pixels (PNG) or points (PDF) */
#define DASHBOARD_EXPORT_ROW_PX 60 /* height of one grid row when the height is free */
#define DASHBOARD_EXPORT_TITLE_PX 56 /* the title band */
/* At most this many pixels (points) each way: a PNG of 4096 x 4096 is 64 MiB while drawn. */
#define DASHBOARD_EXPORT_MAX_PX 4096

/* One widget with the data of its query (a range query: a MATRIX) or why there is none. */
struct dashboard_export_panel {
	const json_t *widget; /* a validated widget (dashboards_validate()) */
	struct promql_result *result; /* NULL: see error */
	char error[256];
};

enum dashboard_export_format {
	DASHBOARD_EXPORT_PNG,
	DASHBOARD_EXPORT_PDF,
};

struct dashboard_export_opts {
	enum dashboard_export_format format;
	const char *title;
	int64_t start_ms, end_ms, step_ms; /* the range the results cover */
	int width; /* > 0 */
	int height; /* 0: title + grid rows * DASHBOARD_EXPORT_ROW_PX + margin, at most the max */
};

/*
 * Render the n panels as o->format into *out (malloc'd, *len bytes). Returns
 * 0, -EINVAL (a size under 100 or over DASHBOARD_EXPORT_MAX_PX, a bad range),
 * -ENOMEM, or -EIO when cairo fails.
 */
int dashboard_export_render(const struct dashboard_export_opts *o,
			    const struct dashboard_export_panel *panels, size_t n, char **out,
			    size_t *len);

/*
 * The JSON export of doc (an answer of GET /api/dashboards/{id} without the
 * server fields): indented, newline-terminated. Returns 0 or -ENOMEM.
 */
int dashboard_export_json(const json_t *doc, char **out, size_t *len);

/*
 * Free the process-wide caches cairo and fontconfig keep after the first
 * rendering (fonts, patterns, configuration), for leak checkers: call it only
 * when no rendering runs or will run again (tests' teardown).
 */
void dashboard_export_release_caches(void);

#endif /* NOVAMON_DASHBOARD_EXPORT_H */
