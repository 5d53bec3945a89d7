/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dashboard_templates: the four ready-made dashboards (see
 * dashboard_templates.h), as tables of widgets over the metric names of
 * README.md's list (userspace/tick.c and the sinks publish them).
 *
 * Utilisation of a vCPU is 1 - its halted fraction
 * (rate(novamon_kvm_halted_seconds_total) is the seconds per second the vCPU
 * spent halted). Availability is the fraction of the last day a VM was seen:
 * novamon_vm_info is published once per second for every running VM, so
 * count_over_time(novamon_vm_info[1d]) / 86400 is its seen-seconds ratio.
 * Capacity is forecast linearly: value + deriv(value[6h]) * 30 days.
 * The tenant template reaches per-VM series through novamon_vm_info's
 * tenant label: "* on (vm) group_left () max by (vm) (novamon_vm_info{tenant="T"})"
 * keeps the left side's labels and only the tenant's VMs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard_templates.h"

/* One widget of a template. Strings with $TENANT get the tenant substituted. */
struct dt_widget {
	const char *type;
	const char *title;
	const char *query;
	const char *unit;
	int refresh_seconds;
	int w, h;
	const char *thresholds; /* JSON array or NULL */
	const char *options; /* JSON object or NULL */
	const char *drilldown; /* JSON array or NULL */
};

struct dt_template {
	const char *name;
	const char *title;
	const char *description;
	int time_range_seconds;
	const struct dt_widget *widgets;
};

#define DT_OK_RED "[{\"value\":0,\"color\":\"red\"},{\"value\":1,\"color\":\"green\"}]"
#define DT_LOSS "[{\"value\":0,\"color\":\"green\"},{\"value\":1,\"color\":\"red\"}]"
#define DT_SLA                                                                    \
	"[{\"value\":0,\"color\":\"red\"},{\"value\":0.99,\"color\":\"orange\"}," \
	"{\"value\":0.999,\"color\":\"green\",\"label\":\"SLA 99.9%\"}]"
#define DT_UTIL                                                                    \
	"[{\"value\":0,\"color\":\"green\"},{\"value\":0.7,\"color\":\"orange\"}," \
	"{\"value\":0.9,\"color\":\"red\"}]"

/* The tenant's VMs, as a one-to-one join target on vm. */
#define DT_TENANT_VMS "max by (vm) (novamon_vm_info{tenant=\"$TENANT\"})"

/*
 * VM exits: novamon_kvm_exits_total (kvm_exit) exists on VMX/SVM hosts only;
 * elsewhere (a paravirtual KVM such as kvm_pvm) the exits that reach
 * userspace are what there is, hence "... or ..._userspace_exits_total".
 */
static const struct dt_widget dt_operations[] = {
	{ "status", "Probes attached", "min(novamon_probe_attached)", "", 5, 3, 2, DT_OK_RED,
	  "{\"ok_text\":\"all probes attached\",\"bad_text\":\"a probe is not attached (see /health)\"}",
	  NULL },
	{ "stat", "Events per second", "sum(rate(novamon_events_total[1m]))", "events/s", 5, 3, 2,
	  NULL, "{\"reduce\":\"last\",\"sparkline\":true}", NULL },
	{ "stat", "Ring loss", "sum(rate(novamon_events_lost_total[1m])) or vector(0)", "events/s",
	  5, 3, 2, DT_LOSS, "{\"reduce\":\"max\"}", NULL },
	{ "stat", "VMs", "count(novamon_vm_info) or vector(0)", "", 10, 3, 2, NULL,
	  "{\"reduce\":\"last\"}", NULL },
	{ "alert_list", "Alerts",
	  "(sum by (cpu) (rate(novamon_events_lost_total[5m])) > 0)"
	  " or (novamon_probe_attached == 0)"
	  " or (sum by (vm, event) (increase(novamon_vm_lifecycle_events_total{event=\"crashed\"}[1h])) > 0)",
	  "", 10, 12, 3, NULL, "{\"max_items\":50,\"show_resolved\":false}", NULL },
	{ "line", "vCPU utilisation by VM",
	  "1 - avg by (vm) (rate(novamon_kvm_halted_seconds_total[1m]))", "percentunit", 5, 6, 4,
	  DT_UTIL, "{\"legend\":true,\"y_min\":0,\"y_max\":1}",
	  "[{\"label\":\"vm\",\"query\":\"1 - rate(novamon_kvm_halted_seconds_total{vm=\\\"$vm\\\"}[1m])\"},"
	  "{\"label\":\"vcpu\",\"query\":\"sum by (reason) (rate(novamon_kvm_exits_total{vm=\\\"$vm\\\",vcpu=\\\"$vcpu\\\"}[1m])) or sum by (reason) (rate(novamon_kvm_userspace_exits_total{vm=\\\"$vm\\\",vcpu=\\\"$vcpu\\\"}[1m]))\"}]" },
	{ "line", "VM exits per second by VM",
	  "sum by (vm) (rate(novamon_kvm_exits_total[1m])) or sum by (vm) (rate(novamon_kvm_userspace_exits_total[1m]))",
	  "exits/s", 5, 6, 4, NULL, "{\"legend\":true}",
	  "[{\"label\":\"vm\",\"query\":\"sum by (vcpu) (rate(novamon_kvm_exits_total{vm=\\\"$vm\\\"}[1m])) or sum by (vcpu) (rate(novamon_kvm_userspace_exits_total{vm=\\\"$vm\\\"}[1m]))\"},"
	  "{\"label\":\"vcpu\",\"query\":\"sum by (reason) (rate(novamon_kvm_exits_total{vm=\\\"$vm\\\",vcpu=\\\"$vcpu\\\"}[1m])) or sum by (reason) (rate(novamon_kvm_userspace_exits_total{vm=\\\"$vm\\\",vcpu=\\\"$vcpu\\\"}[1m]))\"}]" },
	{ "area", "Disk throughput", "sum by (device, op) (rate(novamon_block_bytes_total[1m]))",
	  "bytes/s", 5, 6, 4, NULL, "{\"stacked\":true,\"legend\":true}", NULL },
	{ "area", "Network throughput",
	  "sum by (interface, direction) (rate(novamon_net_bytes_total[1m]))", "bytes/s", 5, 6, 4,
	  NULL, "{\"stacked\":true,\"legend\":true}", NULL },
	{ "heatmap", "Block request latency",
	  "sum by (le) (rate(novamon_block_request_duration_seconds_bucket[1m]))", "seconds", 10, 6,
	  4, NULL, "{\"color_scheme\":\"blues\",\"bucket_label\":\"le\"}", NULL },
	{ "table", "Busiest VMs",
	  "topk(20, sum by (vm) (rate(novamon_kvm_exits_total[5m])) or sum by (vm) (rate(novamon_kvm_userspace_exits_total[5m])))",
	  "exits/s", 10, 6, 4, NULL,
	  "{\"columns\":[\"vm\",\"value\"],\"sort_by\":\"value\",\"sort_desc\":true,\"page_size\":20}",
	  NULL },
	{ "gauge", "novamon CPU", "rate(novamon_process_cpu_seconds_total[1m])", "cores", 5, 3, 3,
	  "[{\"value\":0,\"color\":\"green\"},{\"value\":0.5,\"color\":\"orange\"},{\"value\":1,\"color\":\"red\"}]",
	  "{\"min\":0,\"max\":2}", NULL },
	{ "progress", "Tick duration (of the 1 s budget)", "novamon_tick_duration_seconds",
	  "seconds", 5, 3, 3, DT_UTIL, "{\"min\":0,\"max\":1}", NULL },
	{ "topology", "Host topology", "novamon_vm_info", "", 30, 6, 3, NULL,
	  "{\"levels\":[\"host\",\"vm\",\"vcpu\",\"device\",\"interface\"]}", NULL },
	{ NULL },
};

static const struct dt_widget dt_executive[] = {
	{ "stat", "VM availability, last 24 h",
	  "avg(clamp_max(count_over_time(novamon_vm_info[1d]) / 86400, 1))", "percentunit", 60, 4,
	  2, DT_SLA, "{\"reduce\":\"last\",\"decimals\":3}", NULL },
	{ "gauge", "VMs meeting the 99.9% SLA",
	  "count(clamp_max(count_over_time(novamon_vm_info[1d]) / 86400, 1) >= 0.999)"
	  " / count(novamon_vm_info)",
	  "percentunit", 60, 4, 2, DT_SLA, "{\"min\":0,\"max\":1}", NULL },
	{ "stat", "VMs running", "count(novamon_vm_info) or vector(0)", "", 30, 4, 2, NULL,
	  "{\"reduce\":\"last\",\"sparkline\":true}", NULL },
	{ "line", "vCPU utilisation trend", "1 - avg(rate(novamon_kvm_halted_seconds_total[5m]))",
	  "percentunit", 60, 6, 4, DT_UTIL, "{\"y_min\":0,\"y_max\":1}", NULL },
	{ "area", "Disk throughput trend", "sum by (op) (rate(novamon_block_bytes_total[5m]))",
	  "bytes/s", 60, 6, 4, NULL, "{\"stacked\":true}", NULL },
	{ "area", "Network throughput trend",
	  "sum by (direction) (rate(novamon_net_bytes_total[5m]))", "bytes/s", 60, 6, 4, NULL,
	  "{\"stacked\":true}", NULL },
	{ "stat", "Store size forecast, 30 days",
	  "novamon_tsdb_chunk_bytes + deriv(novamon_tsdb_chunk_bytes[6h]) * 2592000", "bytes", 300,
	  3, 2, NULL, "{\"reduce\":\"last\"}", NULL },
	{ "line", "Active series forecast, 30 days",
	  "novamon_series_active + deriv(novamon_series_active[6h]) * 2592000", "", 300, 3, 2, NULL,
	  NULL, NULL },
	{ "alert_list", "Incidents, last 24 h",
	  "sum by (vm, event) (increase(novamon_vm_lifecycle_events_total{event=~\"crashed|stopped\"}[1d])) > 0",
	  "", 60, 6, 3, NULL, "{\"max_items\":100,\"show_resolved\":true}", NULL },
	{ "bar", "Crashes per VM, last 7 days",
	  "sum by (vm) (increase(novamon_vm_lifecycle_events_total{event=\"crashed\"}[7d]))", "",
	  300, 6, 3, NULL, "{\"orientation\":\"horizontal\"}", NULL },
	{ NULL },
};

static const struct dt_widget dt_developer[] = {
	{ "log_stream", "Trace view: spans",
	  "sum by (kind) (rate(novamon_spans_synthesized_total[1m]))", "spans/s", 5, 12, 4, NULL,
	  "{\"source\":\"spans\",\"max_lines\":200}", NULL },
	{ "line", "Spans synthesized per second by kind",
	  "sum by (kind) (rate(novamon_spans_synthesized_total[1m]))", "spans/s", 10, 6, 3, NULL,
	  "{\"legend\":true}", NULL },
	{ "stat", "Spans dropped", "sum(rate(novamon_spans_dropped_total[5m]))", "spans/s", 10, 3,
	  3, DT_LOSS, "{\"reduce\":\"max\"}", NULL },
	{ "stat", "Decode errors", "rate(novamon_events_decode_errors_total[5m])", "events/s", 10,
	  3, 3, DT_LOSS, "{\"reduce\":\"max\"}", NULL },
	{ "line", "Emulation failures per second by VM",
	  "sum by (vm) (rate(novamon_kvm_emulation_failures_total[5m]))", "errors/s", 10, 6, 3,
	  NULL, "{\"legend\":true}", NULL },
	{ "bar", "Samples refused by sink",
	  "sum by (sink) (rate(novamon_sink_failed_samples_total[5m]))", "samples/s", 10, 6, 3,
	  NULL, "{\"orientation\":\"vertical\"}", NULL },
	{ "line", "Block request latency p99 by op",
	  "histogram_quantile(0.99, sum by (le, op) (rate(novamon_block_request_duration_seconds_bucket[5m])))",
	  "seconds", 10, 6, 4, NULL, "{\"legend\":true}", NULL },
	{ "line", "VM exit latency p99 by reason",
	  "histogram_quantile(0.99, sum by (le, reason) (rate(novamon_kvm_exit_duration_seconds_bucket[5m])))",
	  "seconds", 10, 6, 4, NULL, "{\"legend\":true}", NULL },
	{ "heatmap", "VM exit latency distribution",
	  "sum by (le) (rate(novamon_kvm_exit_duration_seconds_bucket[1m]))", "seconds", 10, 6, 4,
	  NULL, "{\"color_scheme\":\"viridis\"}", NULL },
	{ "line", "vCPU run delay by VM",
	  "sum by (vm) (rate(novamon_vcpu_run_delay_seconds_total[1m]))", "seconds/s", 10, 6, 4,
	  NULL, "{\"legend\":true}", NULL },
	{ NULL },
};

static const struct dt_widget dt_tenant[] = {
	{ "table", "Your VMs", "max by (vm, uuid) (novamon_vm_info{tenant=\"$TENANT\"})", "", 30, 6,
	  3, NULL, "{\"columns\":[\"vm\",\"uuid\"],\"sort_by\":\"vm\",\"page_size\":50}", NULL },
	{ "stat", "VMs running", "count(novamon_vm_info{tenant=\"$TENANT\"}) or vector(0)", "", 30,
	  3, 3, NULL, "{\"reduce\":\"last\"}", NULL },
	{ "gauge", "SLA compliance, last 24 h",
	  "avg(clamp_max(count_over_time(novamon_vm_info{tenant=\"$TENANT\"}[1d]) / 86400, 1))",
	  "percentunit", 60, 3, 3, DT_SLA, "{\"min\":0,\"max\":1}", NULL },
	{ "line", "vCPU utilisation by VM",
	  "1 - avg by (vm) (rate(novamon_kvm_halted_seconds_total[5m]) * on (vm) group_left () " DT_TENANT_VMS
	  ")",
	  "percentunit", 10, 6, 4, DT_UTIL, "{\"y_min\":0,\"y_max\":1,\"legend\":true}", NULL },
	{ "line", "VM exits per second by VM",
	  "sum by (vm) (rate(novamon_kvm_exits_total[5m]) * on (vm) group_left () " DT_TENANT_VMS
	  ") or sum by (vm) (rate(novamon_kvm_userspace_exits_total[5m]) * on (vm) group_left () " DT_TENANT_VMS
	  ")",
	  "exits/s", 10, 6, 4, NULL, "{\"legend\":true}", NULL },
	{ "area", "Disk throughput by VM",
	  "sum by (vm) (rate(novamon_vm_block_bytes_total[5m]) * on (vm) group_left () " DT_TENANT_VMS
	  ")",
	  "bytes/s", 10, 6, 4, NULL, "{\"stacked\":true}", NULL },
	{ "area", "Network throughput by VM",
	  "sum by (vm, direction) (rate(novamon_net_bytes_total[5m]) * on (vm) group_left () " DT_TENANT_VMS
	  ")",
	  "bytes/s", 10, 6, 4, NULL, "{\"stacked\":true}", NULL },
	{ "bar", "Availability per VM, last 24 h",
	  "clamp_max(max by (vm) (count_over_time(novamon_vm_info{tenant=\"$TENANT\"}[1d])) / 86400, 1)",
	  "percentunit", 60, 12, 3, DT_SLA, "{\"orientation\":\"horizontal\"}", NULL },
	{ NULL },
};

static const struct dt_template dt_templates[DASHBOARD_TEMPLATES_N] = {
	{ "executive", "Executive overview",
	  "Availability SLA, utilisation trends, capacity forecast and incidents.", 7 * 86400,
	  dt_executive },
	{ "operations", "Operations",
	  "Host health, alerts, and utilisation with drill-down to VM and vCPU.", 3600,
	  dt_operations },
	{ "developer", "Developer",
	  "Trace view, error rates and latency of VM exits and block I/O.", 3600, dt_developer },
	{ "tenant", "Tenant $TENANT", "Your VMs only: usage and SLA compliance.", 86400,
	  dt_tenant },
};

const char *dashboard_templates_name(size_t i)
{
	return i < DASHBOARD_TEMPLATES_N ? dt_templates[i].name : NULL;
}

const char *dashboard_templates_description(size_t i)
{
	return i < DASHBOARD_TEMPLATES_N ? dt_templates[i].description : NULL;
}

bool dashboard_templates_tenant_ok(const char *tenant)
{
	size_t i;

	if (!tenant || !tenant[0])
		return false;
	for (i = 0; tenant[i]; i++) {
		char c = tenant[i];

		if (i >= 63)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

/*
 * s with every "$TENANT" replaced by tenant (which needs no PromQL or JSON
 * escaping: dashboard_templates_tenant_ok()). Returns a json string or NULL.
 */
static json_t *dt_subst(const char *s, const char *tenant)
{
	static const char key[] = "$TENANT";
	char buf[2048];
	size_t len = 0;
	const char *hit;

	while ((hit = strstr(s, key)) && tenant) {
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%.*s%s", (int)(hit - s), s,
					tenant);
		if (len >= sizeof(buf))
			return NULL;
		s = hit + sizeof(key) - 1;
	}
	if ((size_t)snprintf(buf + len, sizeof(buf) - len, "%s", s) >= sizeof(buf) - len)
		return NULL;
	return json_string(buf);
}

/* A JSON literal of the tables, with $TENANT substituted; NULL on error. */
static json_t *dt_literal(const char *text, const char *tenant)
{
	json_t *s = dt_subst(text, tenant), *v;

	if (!s)
		return NULL;
	v = json_loads(json_string_value(s), 0, NULL);
	json_decref(s);
	return v;
}

static json_t *dt_widget_json(const struct dt_widget *w, const char *tenant)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (json_object_set_new(o, "type", json_string(w->type)) ||
	    json_object_set_new(o, "title", dt_subst(w->title, tenant)) ||
	    json_object_set_new(o, "query", dt_subst(w->query, tenant)) ||
	    json_object_set_new(o, "unit", json_string(w->unit)) ||
	    json_object_set_new(o, "refresh_seconds", json_integer(w->refresh_seconds)) ||
	    json_object_set_new(o, "thresholds",
				w->thresholds ? dt_literal(w->thresholds, tenant) : json_array()) ||
	    json_object_set_new(o, "options",
				w->options ? dt_literal(w->options, tenant) : json_object()))
		goto fail;
	if (w->drilldown && json_object_set_new(o, "drilldown", dt_literal(w->drilldown, tenant)))
		goto fail;
	json_object_set_new(o, "position", json_pack("{s:i,s:i}", "w", w->w, "h", w->h));
	return o;

fail:
	json_decref(o);
	return NULL;
}

json_t *dashboard_templates_build(const char *name, const char *tenant)
{
	const struct dt_template *t = NULL;
	const struct dt_widget *w;
	json_t *doc = NULL, *widgets;
	size_t i;
	int x = 0, y = 0, row_h = 0;

	for (i = 0; i < DASHBOARD_TEMPLATES_N && name; i++)
		if (!strcmp(dt_templates[i].name, name))
			t = &dt_templates[i];
	if (!t) {
		errno = ENOENT;
		return NULL;
	}
	if (t->widgets == dt_tenant) {
		if (!dashboard_templates_tenant_ok(tenant)) {
			errno = EINVAL;
			return NULL;
		}
	} else {
		tenant = NULL;
	}
	doc = json_object();
	widgets = json_array();
	if (!doc || !widgets || json_object_set_new(doc, "name", dt_subst(t->title, tenant)) ||
	    json_object_set_new(doc, "description", json_string(t->description)) ||
	    json_object_set_new(doc, "tenant", json_string(tenant ? tenant : "")) ||
	    json_object_set_new(doc, "tags", json_pack("[ss]", "template", t->name)) ||
	    json_object_set_new(doc, "time_range_seconds", json_integer(t->time_range_seconds)) ||
	    json_object_set(doc, "widgets", widgets))
		goto fail;
	/* lay the panels out left to right on the 12-column grid, wrapping rows */
	for (w = t->widgets; w->type; w++) {
		json_t *wj = dt_widget_json(w, tenant), *pos;

		if (!wj || json_array_append_new(widgets, wj))
			goto fail;
		if (x + w->w > 12) {
			x = 0;
			y += row_h;
			row_h = 0;
		}
		pos = json_object_get(wj, "position");
		if (!pos || json_object_set_new(pos, "x", json_integer(x)) ||
		    json_object_set_new(pos, "y", json_integer(y)))
			goto fail;
		x += w->w;
		if (w->h > row_h)
			row_h = w->h;
	}
	json_decref(widgets);
	return doc;

fail:
	json_decref(widgets);
	json_decref(doc);
	errno = ENOMEM;
	return NULL;
}
