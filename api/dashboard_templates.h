/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dashboard_templates: ready-made dashboards over novamon's own metric names,
 * created in one call (POST /api/dashboards {"template":NAME}):
 *
 *   executive    availability SLA, utilisation trends, capacity forecast, incidents
 *   operations   health, alerts, utilisation with drill-down to VM and vCPU
 *                (what a fresh install has)
 *   developer    trace view, error rates, latency
 *   tenant       one tenant's VMs only: usage and SLA compliance; every query
 *                joins on novamon_vm_info{tenant="T"}
 *
 * The documents are plain dashboard JSON (dashboards.h) and pass
 * dashboards_validate(); every query parses with promql_parse().
 */
#ifndef NOVAMON_DASHBOARD_TEMPLATES_H
#define NOVAMON_DASHBOARD_TEMPLATES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define DASHBOARD_TEMPLATES_N 4

/* The i-th template's name and one-line description (i < DASHBOARD_TEMPLATES_N). */
const char *dashboard_templates_name(size_t i);
const char *dashboard_templates_description(size_t i);

/* A tenant name templates and dashboards accept: 1 to 63 of [A-Za-z0-9_.:-]. */
bool dashboard_templates_tenant_ok(const char *tenant);

/*
 * Build template name's dashboard document. tenant is required by "tenant"
 * (its queries and the dashboard's tenant field are that tenant's) and must
 * pass dashboard_templates_tenant_ok(); the others ignore it. Returns a new
 * reference, or NULL with errno: ENOENT (no such template), EINVAL (bad or
 * missing tenant), ENOMEM.
 */
json_t *dashboard_templates_build(const char *name, const char *tenant);

#endif /* NOVAMON_DASHBOARD_TEMPLATES_H */
