// SPDX-License-Identifier: Apache-2.0
//
// widgets: one WidgetView per widget on screen. It holds the widget's series
// (from a range query, then extended by live deltas) and draws them by type:
// line/area (uPlot), bar, heatmap (canvas), gauge, stat, status, progress,
// table (sort, filter, paginate), alert_list (/api/anomalies plus the query's
// firing series), log_stream (a tail) and topology (host -> VMs -> vCPUs,
// devices, interfaces from /api/v1/series).
//
// For tests and tools each widget element carries data-type, data-series,
// data-points, data-last-t (ms of the newest point) and data-updates.

import { api, labelsKey } from './api.js';
import {
	TimeChart, color, cssColor, drawHeatmap, fmt, gauge, seriesName, sparkline, thresholdColor,
} from './charts.js';

// A small element builder: h('div', {class: 'x', onclick: f}, child, 'text').
export function h(tag, attrs = {}, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === undefined || v === null || v === false) continue;
		if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
		else if (k === 'class') e.className = v;
		else if (k === 'text') e.textContent = v;
		else if (k in e && typeof v !== 'string') e[k] = v;
		else e.setAttribute(k, v === true ? '' : v);
	}
	for (const c of children.flat(Infinity)) {
		if (c === null || c === undefined || c === false) continue;
		e.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
	return e;
}

// Replace el's children with kids, skipping null, undefined and false.
export function fill(el, ...kids) {
	el.replaceChildren(...kids.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false));
	return el;
}

const MAX_LEGEND = 20;

function parseValue(v) {
	if (typeof v === 'number') return v;
	if (v === 'NaN') return NaN;
	if (v === '+Inf' || v === 'Inf') return Infinity;
	if (v === '-Inf') return -Infinity;
	return parseFloat(v);
}

function reduce(points, how) {
	const vs = points.map((p) => p[1]).filter(Number.isFinite);
	if (!vs.length) return NaN;
	switch (how) {
	case 'mean':
		return vs.reduce((a, b) => a + b, 0) / vs.length;
	case 'min':
		return Math.min(...vs);
	case 'max':
		return Math.max(...vs);
	case 'sum':
		return vs.reduce((a, b) => a + b, 0);
	default:
		return vs[vs.length - 1];
	}
}

const fmtTime = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

/*
 * ctx: win() -> {start, end, live} in seconds; drillTarget(labels) ->
 * {label, value, text} or null; drill(target); onSelect(a, b) (zoom);
 * ackAnomaly(id, falsePositive) (a promise); compact (phone layout).
 */
export class WidgetView {
	constructor(widget, ctx) {
		this.w = widget;
		this.ctx = ctx;
		this.opts = widget.options || {};
		this.series = new Map(); // key -> {key, labels, points: [[tSec, v]]}
		this.latest = new Map(); // key -> {labels, v}: the live vector
		this.hidden = new Set();
		this.error = '';
		this.updates = 0;
		this.lastT = 0;
		this.loaded = false;
		this.pending = false;
		this.chart = null;
		this.table = { sortBy: this.opts.sort_by || null, desc: !!this.opts.sort_desc, filter: this.opts.filter || '', page: 0 };
		this.logLines = [];
		this.extra = null; // alert_list anomalies, topology tree
		this.extraAt = 0;
		const pos = widget.position || {};
		const span = Math.min(12, Math.max(1, pos.w || 6));
		this.titleId = `w-${String(widget.id).replace(/[^A-Za-z0-9_-]/g, '_')}-title`;
		this.head = h('header', { class: 'w-head' },
			h('h2', { id: this.titleId, title: widget.query || '' }, widget.title || widget.type),
			widget.unit ? h('span', { class: 'muted w-unit' }, widget.unit) : null);
		this.msg = h('p', { class: 'w-msg muted', role: 'note' });
		this.body = h('div', { class: `w-body w-${widget.type}` });
		this.el = h('section', {
			class: 'widget',
			style: `--span:${span};--rows:${Math.max(1, pos.h || 3)}`,
			'aria-labelledby': this.titleId,
			'data-id': widget.id,
			'data-type': widget.type,
		}, this.head, this.msg, this.body);
	}

	destroy() {
		this.chart?.destroy();
		this.chart = null;
	}

	setError(message) {
		this.error = message || '';
		this.schedule();
	}

	// A full result ({resultType, result}) from /data or /api/v1/query_range.
	setResult(result) {
		this.error = '';
		this.loaded = true;
		const fresh = new Map();
		const add = (metric, values) => {
			const labels = metric || {};
			const key = labelsKey(labels);
			fresh.set(key, { key, labels, points: values.map(([t, v]) => [Number(t), parseValue(v)]) });
		};
		if (result?.resultType === 'matrix') for (const s of result.result || []) add(s.metric, s.values || []);
		else if (result?.resultType === 'vector') for (const s of result.result || []) add(s.metric, [s.value]);
		else if (result?.resultType === 'scalar' && Array.isArray(result.result)) add({}, [result.result]);
		this.series = fresh;
		this.latest = new Map();
		const end = this.ctx.win().end;
		for (const s of fresh.values()) {
			const last = s.points[s.points.length - 1];
			// a series that ended well before the window's end is not live any more
			if (last && end - last[0] < 300) this.latest.set(s.key, { labels: s.labels, v: last[1] });
		}
		this.schedule();
	}

	// A live message: {t, set: [{labels, v}], del: [...]}; first: a full vector.
	applyLive(msg, first) {
		if (msg.type === 'error') {
			this.setError(msg.error || msg.message || 'live query failed');
			return;
		}
		this.error = '';
		const t = (msg.t ?? Date.now()) / 1000;
		if (first) this.latest = new Map();
		for (const d of msg.del || []) {
			const labels = typeof d === 'string' ? null : d.labels || d;
			this.latest.delete(labels ? labelsKey(labels) : d);
		}
		for (const s of msg.set || []) {
			const labels = s.labels || {};
			this.latest.set(labelsKey(labels), { labels, v: parseValue(s.v ?? s.value) });
		}
		for (const [key, { labels, v }] of this.latest) {
			let s = this.series.get(key);
			if (!s) {
				s = { key, labels, points: [] };
				this.series.set(key, s);
			}
			const last = s.points[s.points.length - 1];
			if (last && last[0] >= t) last[1] = v;
			else s.points.push([t, v]);
			if (this.w.type === 'log_stream') this.logLines.unshift({ t: t * 1000, labels, v });
		}
		this.trim();
		this.loaded = true;
		this.schedule();
	}

	// Drop points left of the window and series with none left.
	trim() {
		const { start } = this.ctx.win();
		for (const [key, s] of this.series) {
			let i = 0;
			while (i < s.points.length - 1 && s.points[i][0] < start) i++;
			if (i) s.points.splice(0, i);
			if (!s.points.length || (s.points.length === 1 && s.points[0][0] < start && !this.latest.has(key)))
				this.series.delete(key);
		}
		const max = this.opts.max_lines || 200;
		if (this.logLines.length > max) this.logLines.length = max;
	}

	schedule() {
		if (this.pending) return;
		this.pending = true;
		requestAnimationFrame(() => {
			this.pending = false;
			try {
				this.render();
			} catch (e) {
				this.msg.textContent = `Cannot draw: ${e.message}`;
			}
		});
	}

	list() {
		return [...this.series.values()].sort((a, b) => a.key.localeCompare(b.key));
	}

	// The newest value of each series: [{key, labels, v, t}].
	vector() {
		return this.list().map((s) => {
			const last = s.points[s.points.length - 1];
			return { key: s.key, labels: s.labels, v: last ? last[1] : NaN, t: last ? last[0] : 0 };
		});
	}

	render() {
		this.updates++;
		let points = 0;
		this.lastT = 0;
		for (const s of this.series.values()) {
			points += s.points.length;
			const last = s.points[s.points.length - 1];
			if (last) this.lastT = Math.max(this.lastT, last[0]);
		}
		const d = this.el.dataset;
		d.series = String(this.series.size);
		d.points = String(points);
		d.lastT = String(Math.round(this.lastT * 1000));
		d.updates = String(this.updates);
		const fn = RENDER[this.w.type] || renderUnknown;
		fn(this);
		let note = this.error;
		if (!note && this.loaded && !this.series.size && !['alert_list', 'topology', 'log_stream'].includes(this.w.type))
			note = 'No data in this time range.';
		this.msg.textContent = note;
		this.msg.hidden = !note;
		this.msg.classList.toggle('error', !!this.error);
	}

	// The legend under a chart: toggles, values, drill-down links.
	legend(series, valueOf) {
		const ul = h('ul', { class: 'legend', 'aria-label': `${this.w.title || this.w.type}: series` });
		series.slice(0, MAX_LEGEND).forEach((s) => {
			const c = this.chart?.colorOf ? this.chart.colorOf(s.key) : color(0);
			const target = this.ctx.drillTarget(s.labels);
			const name = seriesName(s.labels);
			const hidden = this.hidden.has(s.key);
			ul.append(h('li', { class: hidden ? 'off' : '' },
				h('button', {
					type: 'button',
					class: 'swatch',
					style: `--c:${c}`,
					'aria-pressed': hidden ? 'false' : 'true',
					'aria-label': `${hidden ? 'Show' : 'Hide'} ${name}`,
					onclick: () => {
						if (this.hidden.has(s.key)) this.hidden.delete(s.key);
						else this.hidden.add(s.key);
						this.schedule();
					},
				}),
				target
					? h('a', { class: 'drill', href: this.ctx.drillHref(target), title: `Drill down to ${target.text}`, 'data-drill': target.label }, name)
					: h('span', { class: 'name' }, name),
				h('span', { class: 'val' }, fmt(valueOf(s), this.w.unit, this.opts.decimals))));
		});
		if (series.length > MAX_LEGEND) ul.append(h('li', { class: 'muted' }, `and ${series.length - MAX_LEGEND} more`));
		return ul;
	}

	// Refresh side data (anomalies, topology) at most every refresh_seconds.
	due() {
		const every = Math.max(2, this.w.refresh_seconds || 10) * 1000;
		if (Date.now() - this.extraAt < every) return false;
		this.extraAt = Date.now();
		return true;
	}
}

function renderUnknown(v) {
	v.body.replaceChildren(h('p', { class: 'muted' }, `Unknown widget type "${v.w.type}".`));
}

function chartHeight(v) {
	const rows = (v.w.position || {}).h || 4;
	return v.ctx.compact ? 180 : Math.max(140, rows * 52);
}

function renderTime(v) {
	const series = v.list().map((s) => ({ ...s, hidden: v.hidden.has(s.key) }));
	const win = v.ctx.win();
	if (v.w.type === 'heatmap') {
		if (!v.canvas) {
			v.canvas = h('canvas', { class: 'heatmap', role: 'img', style: `height:${chartHeight(v)}px` });
			v.body.replaceChildren(v.canvas);
		}
		v.canvas.hidden = !series.length;
		if (v.canvas.hidden) return;
		const { cells } = drawHeatmap(v.canvas, series, v.w, win);
		v.canvas.setAttribute('aria-label', `${v.w.title}: heatmap of ${series.length} buckets, ${cells} cells`);
		return;
	}
	if (!v.chart) {
		v.plot = h('div', { class: 'plot', role: 'img' });
		v.legendBox = h('div');
		v.body.replaceChildren(v.plot, v.legendBox);
		v.chart = new TimeChart(v.plot, v.w, { onSelect: (a, b) => v.ctx.onSelect(a, b), height: chartHeight(v) });
	}
	v.plot.setAttribute('aria-label', `${v.w.title}: ${v.w.type} chart of ${series.length} series`);
	v.plot.hidden = !series.length;
	v.chart.update(series, win);
	v.plot.dataset.xMin = String(Math.round(win.start * 1000));
	v.plot.dataset.xMax = String(Math.round(win.end * 1000));
	if (v.opts.legend !== false) v.legendBox.replaceChildren(v.legend(series, (s) => s.points[s.points.length - 1]?.[1]));
	else v.legendBox.replaceChildren();
}

function renderBar(v) {
	const horizontal = v.opts.orientation === 'horizontal';
	const rows = v.vector();
	const max = Math.max(0, ...rows.map((r) => (Number.isFinite(r.v) ? r.v : 0))) || 1;
	const list = h('ul', { class: `bars ${horizontal ? 'horizontal' : 'vertical'}`, role: 'list' });
	rows.slice(0, 50).forEach((r, i) => {
		const pct = Math.max(0, Math.min(100, (r.v / max) * 100));
		const fill = v.w.thresholds?.length ? thresholdColor(r.v, v.w.thresholds) : color(i);
		const target = v.ctx.drillTarget(r.labels);
		const name = seriesName(r.labels);
		list.append(h('li', {},
			target ? h('a', { class: 'name drill', href: v.ctx.drillHref(target), 'data-drill': target.label }, name) : h('span', { class: 'name' }, name),
			h('span', { class: 'track' }, h('span', { class: 'fill', style: `--pct:${pct.toFixed(1)}%;--c:${fill}` })),
			h('span', { class: 'val' }, fmt(r.v, v.w.unit, v.opts.decimals))));
	});
	v.body.replaceChildren(list);
}

function firstValue(v) {
	const s = v.list()[0];
	return s ? s.points[s.points.length - 1]?.[1] : NaN;
}

function renderStat(v) {
	const series = v.list();
	const how = v.opts.reduce || 'last';
	const box = h('div', { class: 'stats' });
	for (const s of series.slice(0, 6)) {
		const val = reduce(s.points, how);
		const c = thresholdColor(val, v.w.thresholds, 'var(--text)');
		box.append(h('div', { class: 'stat' },
			h('span', { class: 'big', style: `color:${c}` }, fmt(val, v.w.unit, v.opts.decimals)),
			series.length > 1 ? h('span', { class: 'muted small' }, seriesName(s.labels)) : null,
			v.opts.sparkline ? sparkline(s.points, c === 'var(--text)' ? 'var(--accent)' : c) : null));
	}
	if (!series.length) box.append(h('span', { class: 'big muted' }, '–'));
	v.body.replaceChildren(box);
}

function renderGauge(v) {
	const val = firstValue(v);
	const min = v.opts.min ?? 0;
	const th = v.w.thresholds || [];
	const max = v.opts.max ?? (v.w.unit === 'percentunit' ? 1 : Math.max(1, ...th.map((t) => t.value)));
	const c = thresholdColor(val, th);
	v.body.replaceChildren(h('figure', { class: 'gauge-box', role: 'meter', 'aria-valuemin': min, 'aria-valuemax': max, 'aria-valuenow': Number.isFinite(val) ? val : undefined, 'aria-label': v.w.title },
		gauge(val, min, max, c),
		h('figcaption', {}, h('span', { class: 'big', style: `color:${c}` }, fmt(val, v.w.unit, v.opts.decimals)),
			h('span', { class: 'muted small range' }, `${fmt(min, v.w.unit)} – ${fmt(max, v.w.unit)}`))));
}

function renderProgress(v) {
	const val = firstValue(v);
	const min = v.opts.min ?? 0;
	const max = v.opts.max ?? 1;
	const pct = Number.isFinite(val) ? Math.max(0, Math.min(100, ((val - min) / (max - min || 1)) * 100)) : 0;
	const c = thresholdColor(val, v.w.thresholds);
	v.body.replaceChildren(h('div', { class: 'progress-box' },
		h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': min, 'aria-valuemax': max, 'aria-valuenow': Number.isFinite(val) ? val : undefined, 'aria-label': v.w.title },
			h('span', { style: `--pct:${pct.toFixed(1)}%;--c:${c}` })),
		h('span', { class: 'big small-big' }, fmt(val, v.w.unit, v.opts.decimals), h('span', { class: 'muted small' }, ` of ${fmt(max, v.w.unit)}`))));
}

function renderStatus(v) {
	const val = firstValue(v);
	let state = 'unknown';
	if (Number.isFinite(val)) {
		const th = v.w.thresholds || [];
		const c = th.length ? thresholdColor(val, th, null) : val ? '#56c288' : '#e5646e';
		state = c === cssColor('green') ? 'ok' : c === cssColor('red') ? 'bad' : 'warn';
	}
	const text = state === 'ok' ? v.opts.ok_text || 'OK' : state === 'bad' ? v.opts.bad_text || 'Problem' : state === 'warn' ? 'Warning' : 'No data';
	v.body.replaceChildren(h('p', { class: `status-ind ${state}` }, h('span', { class: 'dot', 'aria-hidden': 'true' }), text));
	v.el.dataset.state = state;
}

function renderTable(v) {
	const st = v.table;
	const rows = v.vector();
	const labelCols = [...new Set(rows.flatMap((r) => Object.keys(r.labels)))].filter((k) => k !== '__name__').sort();
	const cols = Array.isArray(v.opts.columns) && v.opts.columns.length ? v.opts.columns : [...labelCols, 'value'];
	const cell = (r, c) => (c === 'value' ? r.v : r.labels[c] ?? '');
	const needle = st.filter.trim().toLowerCase();
	let shown = rows.filter((r) => !needle || cols.some((c) => String(c === 'value' ? fmt(r.v, v.w.unit) : cell(r, c)).toLowerCase().includes(needle)));
	if (st.sortBy && cols.includes(st.sortBy)) {
		const k = st.sortBy;
		shown.sort((a, b) => {
			const x = cell(a, k);
			const y = cell(b, k);
			const r = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
			return st.desc ? -r : r;
		});
	}
	const size = v.opts.page_size || 20;
	const pages = Math.max(1, Math.ceil(shown.length / size));
	st.page = Math.min(st.page, pages - 1);
	const pageRows = shown.slice(st.page * size, (st.page + 1) * size);

	if (!v.tableUi) {
		const filter = h('input', {
			type: 'search', placeholder: 'Filter', 'aria-label': `Filter ${v.w.title}`, value: st.filter,
			oninput: (e) => {
				st.filter = e.target.value;
				st.page = 0;
				v.schedule();
			},
		});
		v.tableUi = { filter, wrap: h('div', { class: 'table-wrap' }), pager: h('div', { class: 'pager' }) };
		v.body.replaceChildren(h('div', { class: 'table-tools' }, filter), v.tableUi.wrap, v.tableUi.pager);
	}
	const thead = h('tr', {}, cols.map((c) => h('th', { scope: 'col', 'aria-sort': st.sortBy === c ? (st.desc ? 'descending' : 'ascending') : 'none' },
		h('button', {
			type: 'button',
			onclick: () => {
				if (st.sortBy === c) st.desc = !st.desc;
				else {
					st.sortBy = c;
					st.desc = c === 'value';
				}
				v.schedule();
			},
		}, c, st.sortBy === c ? (st.desc ? ' ▼' : ' ▲') : ''))));
	const tbody = h('tbody', {}, pageRows.map((r) => h('tr', {}, cols.map((c) => {
		if (c === 'value') return h('td', { class: 'num' }, fmt(r.v, v.w.unit, v.opts.decimals));
		const target = (c === 'vm' || c === 'vcpu') && v.ctx.drillTarget(r.labels);
		const text = String(cell(r, c));
		return h('td', {}, target && target.label === c ? h('a', { class: 'drill', href: v.ctx.drillHref(target), 'data-drill': c }, text) : text);
	}))));
	v.tableUi.wrap.replaceChildren(h('table', {}, h('caption', { class: 'sr-only' }, v.w.title || 'table'), h('thead', {}, thead), tbody));
	v.tableUi.pager.replaceChildren(
		h('button', { type: 'button', disabled: st.page === 0, onclick: () => { st.page--; v.schedule(); } }, 'Previous'),
		h('span', { class: 'muted small' }, `${shown.length} rows · page ${st.page + 1} of ${pages}`),
		h('button', { type: 'button', disabled: st.page >= pages - 1, onclick: () => { st.page++; v.schedule(); } }, 'Next'));
}

function renderLog(v) {
	if (!v.logLines.length && v.series.size) {
		for (const s of v.list()) {
			for (const [t, val] of s.points.slice(-20)) v.logLines.push({ t: t * 1000, labels: s.labels, v: val });
		}
		v.logLines.sort((a, b) => b.t - a.t);
		v.trim();
	}
	const needle = (v.opts.filter || '').toLowerCase();
	const lines = v.logLines.filter((l) => !needle || seriesName(l.labels).toLowerCase().includes(needle));
	v.body.replaceChildren(h('ol', { class: 'log', 'aria-label': `${v.w.title}: newest first` },
		lines.slice(0, 200).map((l) => h('li', {},
			h('time', { datetime: new Date(l.t).toISOString() }, fmtTime(l.t)), ' ',
			h('span', { class: 'name' }, seriesName(l.labels)), ' ',
			h('span', { class: 'val' }, fmt(l.v, v.w.unit))))));
	if (!lines.length) v.body.append(h('p', { class: 'muted' }, 'Nothing yet.'));
}

// An anomaly row with its acknowledge buttons (also used by the anomalies page).
export function anomalyItem(a, ctx, compact = false) {
	const acked = a.acknowledged || a.state === 'acknowledged';
	const labels = a.labels || {};
	const when = a.start ? new Date(typeof a.start === 'number' && a.start < 1e12 ? a.start * 1000 : a.start) : null;
	const li = h('li', { class: `anomaly ${acked ? 'acked' : ''} ${a.state === 'closed' ? 'closed' : ''}`, 'data-anomaly-id': a.id, 'data-acknowledged': acked ? 'true' : 'false' },
		h('div', { class: 'a-main' },
			h('strong', {}, a.metric || labels.__name__ || 'anomaly'),
			' ', h('span', { class: 'muted small' }, seriesName(labels)),
			h('div', { class: 'small' },
				when && !Number.isNaN(when.getTime()) ? h('time', { datetime: when.toISOString() }, when.toLocaleString()) : null,
				a.score !== undefined ? ` · score ${fmt(a.score, '', 2)}` : '',
				a.expected !== undefined && a.actual !== undefined ? ` · expected ${fmt(a.expected)}, got ${fmt(a.actual)}` : '',
				a.reason ? ` · ${a.reason}` : '',
				Array.isArray(a.detectors) && a.detectors.length ? ` · ${a.detectors.join(', ')}` : '')),
		h('div', { class: 'a-actions' },
			h('span', { class: `pill ${acked ? 'ok' : a.state === 'closed' ? '' : 'bad'}` }, acked ? (a.false_positive ? 'false positive' : 'acknowledged') : a.state || 'open'),
			acked ? null : h('button', { type: 'button', class: 'primary', 'data-action': 'ack', onclick: (e) => ack(e, false) }, 'Acknowledge'),
			acked || compact ? null : h('button', { type: 'button', 'data-action': 'false-positive', onclick: (e) => ack(e, true) }, 'False positive')));
	async function ack(e, fp) {
		const btns = li.querySelectorAll('button');
		btns.forEach((b) => { b.disabled = true; });
		try {
			await ctx.ackAnomaly(a.id, fp);
		} catch (err) {
			btns.forEach((b) => { b.disabled = false; });
			ctx.status(`Cannot acknowledge: ${err.message}`, true);
		}
	}
	return li;
}

function renderAlerts(v) {
	const max = v.opts.max_items || 50;
	if (v.due()) {
		const states = v.opts.show_resolved ? [undefined] : ['open'];
		Promise.all(states.map((state) => api('/api/anomalies', { query: { state, vm: v.ctx.filter?.vm } })))
			.then((rs) => {
				v.extra = rs.flatMap((r) => r?.data?.anomalies || []);
				v.anomalyError = '';
				v.schedule();
			})
			.catch((e) => {
				v.anomalyError = e.status === 404 ? 'No anomaly API on this daemon.' : `Anomalies: ${e.message}`;
				v.extra = [];
				v.schedule();
			});
	}
	const items = [];
	for (const r of v.vector()) {
		if (!Number.isFinite(r.v)) continue;
		items.push(h('li', { class: 'alert' },
			h('span', { class: 'pill bad' }, 'firing'), ' ',
			h('span', {}, seriesName(r.labels)), ' ',
			h('span', { class: 'muted small' }, fmt(r.v, v.w.unit))));
	}
	const anomalies = (v.extra || []).slice(0, max);
	fill(v.body,
		h('ul', { class: 'alerts', 'aria-label': `${v.w.title}: firing` }, items.slice(0, max)),
		h('ul', { class: 'anomalies', 'aria-label': `${v.w.title}: anomalies` }, anomalies.map((a) => anomalyItem(a, v.ctx, true))),
		!items.length && !anomalies.length ? h('p', { class: 'muted' }, v.anomalyError || 'Nothing firing, no open anomalies.') : null,
		v.anomalyError && (items.length || anomalies.length) ? h('p', { class: 'muted small' }, v.anomalyError) : null);
}

function renderTopology(v) {
	if (v.due()) {
		const now = Date.now() / 1000;
		const f = v.ctx.filter || {};
		const sel = ['__name__=~"novamon_.+"', f.vm ? `vm="${f.vm.replace(/["\\]/g, '\\$&')}"` : 'vm!=""'];
		api('/api/v1/series', { query: { 'match[]': `{${sel.join(',')}}`, start: Math.floor(now - 300), end: Math.ceil(now) } })
			.then((r) => {
				const vms = new Map();
				for (const m of r?.data || []) {
					if (!m.vm) continue;
					if (!vms.has(m.vm)) vms.set(m.vm, { vcpu: new Set(), device: new Set(), interface: new Set() });
					const e = vms.get(m.vm);
					for (const k of ['vcpu', 'device', 'interface']) if (m[k]) e[k].add(m[k]);
				}
				v.extra = vms;
				v.topoError = '';
				v.schedule();
			})
			.catch((e) => {
				v.topoError = `Topology: ${e.message}`;
				v.schedule();
			});
	}
	const levels = new Set(v.opts.levels || ['host', 'vm', 'vcpu', 'device', 'interface']);
	const vms = v.extra instanceof Map ? v.extra : new Map();
	const sortNum = (a, b) => a.localeCompare(b, undefined, { numeric: true });
	const host = h('li', {}, h('span', { class: 'node host' }, v.opts.root || location.hostname || 'host'),
		h('ul', {}, [...vms.keys()].sort(sortNum).map((vm) => {
			const e = vms.get(vm);
			const target = v.ctx.drillTarget({ vm });
			const kids = [];
			for (const k of ['vcpu', 'device', 'interface']) {
				if (!levels.has(k) || !e[k].size) continue;
				kids.push(h('li', {}, h('span', { class: 'muted small' }, `${k === 'vcpu' ? 'vCPUs' : `${k}s`}: `),
					[...e[k]].sort(sortNum).map((x, i) => {
						const t = k === 'vcpu' ? v.ctx.drillTarget({ vm, vcpu: x }) : null;
						return [i ? ', ' : '', t && t.label === 'vcpu' ? h('a', { class: 'drill', href: v.ctx.drillHref(t), 'data-drill': 'vcpu' }, x) : x];
					})));
			}
			return h('li', {},
				target ? h('a', { class: 'node vm drill', href: v.ctx.drillHref(target), 'data-drill': 'vm' }, vm) : h('span', { class: 'node vm' }, vm),
				kids.length ? h('ul', {}, kids) : null);
		})));
	fill(v.body, h('ul', { class: 'tree', 'aria-label': 'Host topology' }, host),
		!vms.size ? h('p', { class: 'muted small' }, v.topoError || 'No VMs seen in the last 5 minutes.') : null);
}

const RENDER = {
	line: renderTime,
	area: renderTime,
	heatmap: renderTime,
	bar: renderBar,
	stat: renderStat,
	gauge: renderGauge,
	progress: renderProgress,
	status: renderStatus,
	table: renderTable,
	log_stream: renderLog,
	alert_list: renderAlerts,
	topology: renderTopology,
};

