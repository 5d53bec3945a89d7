// SPDX-License-Identifier: Apache-2.0
//
// charts: value formatting, colours, and the drawn widgets: time series
// (uPlot: line, stacked area), the heatmap (a canvas), sparklines and gauges
// (SVG). The DOM-only widgets live in widgets.js.

/* global uPlot */

export const PALETTE = [
	'#5b9cf6', '#f2a93b', '#56c288', '#e5646e', '#b78cf2',
	'#4cc9d6', '#d9d45b', '#f07fbf', '#9aa5b1', '#8fd16a',
];

export const color = (i) => PALETTE[i % PALETTE.length];

const SI = [
	[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k'],
];
const IEC = [
	[2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB'],
];

function fixed(v, decimals) {
	if (decimals !== undefined && decimals !== null) return v.toFixed(decimals);
	const a = Math.abs(v);
	if (a === 0) return '0';
	if (a >= 100) return v.toFixed(0);
	if (a >= 10) return v.toFixed(1);
	if (a >= 0.01) return v.toFixed(2);
	return v.toPrecision(2);
}

/*
 * A value with its unit, short: 0.734 "percentunit" -> "73.4%", 3.2e6
 * "bytes/s" -> "3.05 MiB/s", 0.0021 "seconds" -> "2.1 ms", 12000 "exits/s"
 * -> "12.0k exits/s". decimals (the widget option) fixes the digits.
 */
export function fmt(v, unit = '', decimals) {
	if (v === null || v === undefined || Number.isNaN(v)) return '–';
	if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
	const a = Math.abs(v);
	switch (unit) {
	case 'percentunit':
		return `${fixed(v * 100, decimals)}%`;
	case 'percent':
		return `${fixed(v, decimals)}%`;
	case 'bytes':
	case 'bytes/s': {
		const suffix = unit === 'bytes/s' ? '/s' : '';
		for (const [d, n] of IEC) if (a >= d) return `${fixed(v / d, decimals)} ${n}${suffix}`;
		return `${fixed(v, decimals)} B${suffix}`;
	}
	case 'seconds':
	case 's':
		if (a >= 1 || a === 0) return `${fixed(v, decimals)} s`;
		if (a >= 1e-3) return `${fixed(v * 1e3, decimals)} ms`;
		if (a >= 1e-6) return `${fixed(v * 1e6, decimals)} µs`;
		return `${fixed(v * 1e9, decimals)} ns`;
	default: {
		const u = unit ? ` ${unit}` : '';
		for (const [d, n] of SI) if (a >= d) return `${fixed(v / d, decimals)}${n}${u}`;
		/* a small count reads as one: "3 VMs", not "3.00" */
		if (Number.isInteger(v) && (decimals === undefined || decimals === null)) return `${v}${u}`;
		return `${fixed(v, decimals)}${u}`;
	}
	}
}

// The colour of v by thresholds [{value, color}] (ascending): the last one at or below v.
export function thresholdColor(v, thresholds, fallback = 'var(--accent)') {
	let c = fallback;
	if (!Array.isArray(thresholds) || v === null || v === undefined || Number.isNaN(v)) return c;
	for (const t of thresholds) if (v >= t.value) c = cssColor(t.color);
	return c;
}

const NAMED = { green: '#56c288', red: '#e5646e', orange: '#f2a93b', yellow: '#d9d45b', blue: '#5b9cf6' };
export const cssColor = (c) => NAMED[c] || c || 'var(--accent)';

// A series' display name: its labels but the metric name, or the metric name.
export function seriesName(labels) {
	const ks = Object.keys(labels || {}).filter((k) => k !== '__name__');
	if (!ks.length) return labels?.__name__ || 'value';
	return ks.map((k) => `${k}="${labels[k]}"`).join(', ');
}

const pad2 = (n) => String(n).padStart(2, '0');

// A time axis label: HH:MM:SS for windows up to 10 min, HH:MM up to 2 days, else MM-DD HH:MM.
export function timeLabel(tSec, spanSec) {
	const d = new Date(tSec * 1000);
	const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
	if (spanSec <= 600) return `${hm}:${pad2(d.getSeconds())}`;
	if (spanSec <= 2 * 86400) return hm;
	return `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${hm}`;
}

function cssVar(name, fallback) {
	const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
	return v || fallback;
}

/*
 * TimeChart: a uPlot line or stacked-area chart in el.
 *
 * update(series, win) draws series [{key, labels, points: [[tSec, v], ...],
 * hidden}] over the window win {start, end} (seconds). Series keep their
 * colours by key. A drag selects a time range: onSelect(startSec, endSec).
 */
export class TimeChart {
	constructor(el, widget, { onSelect, height }) {
		this.el = el;
		this.widget = widget;
		this.opts = widget.options || {};
		this.stacked = widget.type === 'area' && this.opts.stacked !== false;
		this.onSelect = onSelect;
		this.height = height;
		this.u = null;
		this.keys = '';
		this.win = { start: 0, end: 1 };
		this.colors = new Map();
		this.ro = new ResizeObserver(() => this.resize());
		this.ro.observe(el);
	}

	colorOf(key) {
		if (!this.colors.has(key)) this.colors.set(key, color(this.colors.size));
		return this.colors.get(key);
	}

	resize() {
		if (!this.u) return;
		const w = Math.max(120, Math.floor(this.el.clientWidth));
		if (Math.abs(w - this.u.width) > 1) this.u.setSize({ width: w, height: this.height });
	}

	destroy() {
		this.ro.disconnect();
		if (this.u) this.u.destroy();
		this.u = null;
	}

	// [xs, ys...] aligned on the union of the series' timestamps.
	align(series) {
		const ts = new Set();
		for (const s of series) for (const [t] of s.points) ts.add(t);
		const xs = [...ts].sort((a, b) => a - b);
		const at = new Map(xs.map((t, i) => [t, i]));
		const ys = series.map((s) => {
			const y = new Array(xs.length).fill(null);
			for (const [t, v] of s.points) y[at.get(t)] = Number.isFinite(v) ? v : null;
			return y;
		});
		if (this.stacked) {
			// cumulative sums, drawn from the top down so that each band shows
			const acc = new Array(xs.length).fill(0);
			for (let i = 0; i < ys.length; i++) {
				if (series[i].hidden) continue;
				ys[i] = ys[i].map((v, j) => (v === null ? (acc[j] ? acc[j] : null) : (acc[j] += v)));
			}
		}
		return [xs, ...ys];
	}

	update(series, win) {
		this.win = win;
		const visible = series;
		const keys = visible.map((s) => `${s.key}|${s.hidden ? 0 : 1}`).join(';');
		const data = this.align(visible);
		if (this.stacked) {
			// uPlot paints in order: the largest sum first
			data.splice(1, data.length - 1, ...data.slice(1).reverse());
		}
		if (!this.u || keys !== this.keys) {
			this.keys = keys;
			this.create(visible, data);
		} else {
			this.u.setData(data);
		}
	}

	create(series, data) {
		if (this.u) this.u.destroy();
		const unit = this.widget.unit || '';
		const decimals = this.opts.decimals;
		const axisColor = cssVar('--muted', '#9aa5b1');
		const gridColor = cssVar('--grid', '#2a3340');
		const ordered = this.stacked ? [...series].reverse() : series;
		const self = this;
		const opts = {
			width: Math.max(120, Math.floor(this.el.clientWidth)),
			height: this.height,
			legend: { show: false },
			cursor: { drag: { x: true, y: false, setScale: false }, points: { size: 6 } },
			scales: {
				x: { time: true, range: () => [self.win.start, self.win.end] },
				y: {
					distr: this.opts.log_scale ? 3 : 1,
					range: (u, min, max) => {
						let lo = this.opts.y_min ?? (min > 0 && !this.stacked ? min : Math.min(0, min ?? 0));
						let hi = this.opts.y_max ?? max ?? 1;
						if (this.opts.log_scale) lo = Math.max(lo, 1e-9);
						if (hi <= lo) hi = lo + (Math.abs(lo) || 1);
						return [lo, this.opts.y_max ?? hi + (hi - lo) * 0.05];
					},
				},
			},
			axes: [
				{
					stroke: axisColor,
					grid: { stroke: gridColor, width: 1 },
					ticks: { stroke: gridColor },
					space: 70,
					// one line per tick, as precise as the window needs
					values: (u, ticks) => ticks.map((t) => timeLabel(t, this.win.end - this.win.start)),
				},
				{
					stroke: axisColor,
					grid: { stroke: gridColor, width: 1 },
					ticks: { stroke: gridColor },
					// wide enough for the longest label ("1.23 MiB/s")
					size: (u, vals) => (vals ? Math.max(...vals.map((v) => String(v).length)) * 7 + 18 : 40),
					values: (u, vals) => vals.map((v) => fmt(v, unit, decimals)),
				},
			],
			series: [
				{},
				...ordered.map((s) => {
					const c = this.colorOf(s.key);
					return {
						label: seriesName(s.labels),
						stroke: c,
						width: 1.5,
						show: !s.hidden,
						fill: this.stacked || this.opts.fill ? `${c}55` : undefined,
						points: { show: false },
						value: (u, v) => fmt(v, unit, decimals),
					};
				}),
			],
			hooks: {
				setSelect: [
					(u) => {
						if (u.select.width < 4) return;
						const a = u.posToVal(u.select.left, 'x');
						const b = u.posToVal(u.select.left + u.select.width, 'x');
						u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
						this.onSelect?.(a, b);
					},
				],
				draw: [(u) => this.drawThresholds(u)],
			},
		};
		this.u = new uPlot(opts, data, this.el);
	}

	drawThresholds(u) {
		const th = this.widget.thresholds;
		if (!Array.isArray(th)) return;
		const { ctx } = u;
		const [lo, hi] = [u.scales.y.min, u.scales.y.max];
		ctx.save();
		ctx.setLineDash([4, 4]);
		ctx.lineWidth = 1;
		for (const t of th) {
			if (!(t.value > lo && t.value < hi)) continue;
			const y = Math.round(u.valToPos(t.value, 'y', true)) + 0.5;
			ctx.strokeStyle = cssColor(t.color);
			ctx.beginPath();
			ctx.moveTo(u.bbox.left, y);
			ctx.lineTo(u.bbox.left + u.bbox.width, y);
			ctx.stroke();
		}
		ctx.restore();
	}
}

const SCHEMES = {
	blues: ['#0b1d33', '#1f4e89', '#3f83d1', '#8cc3ff', '#e3f1ff'],
	greens: ['#0b2618', '#1d6b3f', '#36a866', '#8fdcaa', '#e6fbef'],
	reds: ['#2a0b0e', '#7a1f29', '#c8404f', '#f29aa2', '#fde8ea'],
	viridis: ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'],
};

function lerpColor(stops, f) {
	const x = Math.min(1, Math.max(0, f)) * (stops.length - 1);
	const i = Math.min(stops.length - 2, Math.floor(x));
	const t = x - i;
	const a = parseInt(stops[i].slice(1), 16);
	const b = parseInt(stops[i + 1].slice(1), 16);
	const ch = (s) => Math.round(((a >> s) & 255) * (1 - t) + ((b >> s) & 255) * t);
	return `rgb(${ch(16)},${ch(8)},${ch(0)})`;
}

/*
 * A heatmap of histogram buckets over time on a canvas: one row per bucket
 * (bucket_label, default "le", sorted by bound; cumulative counts become
 * per-bucket counts), one column per timestamp, colour by count.
 */
export function drawHeatmap(canvas, series, widget, win) {
	const opts = widget.options || {};
	const label = opts.bucket_label || 'le';
	const stops = SCHEMES[opts.color_scheme] || SCHEMES.blues;
	const bound = (s) => {
		const v = s.labels?.[label];
		return v === '+Inf' ? Infinity : parseFloat(v);
	};
	const rows = series.filter((s) => !Number.isNaN(bound(s))).sort((a, b) => bound(a) - bound(b));
	const dpr = window.devicePixelRatio || 1;
	const w = canvas.clientWidth || 300;
	const h = canvas.clientHeight || 160;
	canvas.width = Math.floor(w * dpr);
	canvas.height = Math.floor(h * dpr);
	const ctx = canvas.getContext('2d');
	ctx.scale(dpr, dpr);
	ctx.clearRect(0, 0, w, h);
	const left = 56;
	const bottom = 18;
	ctx.font = '11px system-ui, sans-serif';
	ctx.fillStyle = cssVar('--muted', '#9aa5b1');
	if (!rows.length) {
		ctx.fillText('No buckets', left, h / 2);
		return { cells: 0 };
	}
	const ts = [...new Set(rows.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
	const tIdx = new Map(ts.map((t, i) => [t, i]));
	const grid = rows.map(() => new Array(ts.length).fill(0));
	rows.forEach((s, r) => {
		for (const [t, v] of s.points) grid[r][tIdx.get(t)] = Number.isFinite(v) ? v : 0;
	});
	// cumulative (le) -> per bucket, top row down
	for (let r = rows.length - 1; r > 0; r--)
		for (let c = 0; c < ts.length; c++) grid[r][c] = Math.max(0, grid[r][c] - grid[r - 1][c]);
	let max = 0;
	for (const row of grid) for (const v of row) max = Math.max(max, v);
	const pw = w - left;
	const ph = h - bottom;
	const span = Math.max(1, win.end - win.start);
	const cellH = ph / rows.length;
	const step = ts.length > 1 ? (ts[ts.length - 1] - ts[0]) / (ts.length - 1) : span / 50;
	const cellW = Math.max(1, (step / span) * pw);
	let cells = 0;
	for (let r = 0; r < rows.length; r++) {
		for (let c = 0; c < ts.length; c++) {
			const x = left + ((ts[c] - win.start) / span) * pw;
			if (x + cellW < left || x > w) continue;
			ctx.fillStyle = lerpColor(stops, max ? grid[r][c] / max : 0);
			ctx.fillRect(x, ph - (r + 1) * cellH, cellW + 0.5, cellH + 0.5);
			cells++;
		}
	}
	ctx.fillStyle = cssVar('--muted', '#9aa5b1');
	const every = Math.max(1, Math.ceil(rows.length / Math.max(1, Math.floor(ph / 14))));
	for (let r = 0; r < rows.length; r += every) {
		const b = bound(rows[r]);
		ctx.fillText(b === Infinity ? '+Inf' : fmt(b, widget.unit), 2, ph - r * cellH - cellH / 2 + 4);
	}
	ctx.fillText(timeLabel(win.start, span), left, h - 4);
	const endLabel = timeLabel(win.end, span);
	ctx.fillText(endLabel, w - ctx.measureText(endLabel).width - 2, h - 4);
	return { cells };
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
	const e = document.createElementNS(SVG, tag);
	for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
	return e;
}

// A sparkline of points [[t, v], ...] as an SVG polyline.
export function sparkline(points, stroke) {
	const s = svg('svg', { class: 'spark', viewBox: '0 0 100 24', preserveAspectRatio: 'none', 'aria-hidden': 'true' });
	const vals = points.filter((p) => Number.isFinite(p[1]));
	if (vals.length < 2) return s;
	const t0 = vals[0][0];
	const t1 = vals[vals.length - 1][0];
	let lo = Infinity;
	let hi = -Infinity;
	for (const [, v] of vals) {
		lo = Math.min(lo, v);
		hi = Math.max(hi, v);
	}
	if (hi === lo) hi = lo + 1;
	const pts = vals.map(([t, v]) => `${(((t - t0) / (t1 - t0 || 1)) * 100).toFixed(2)},${(22 - ((v - lo) / (hi - lo)) * 20).toFixed(2)}`);
	s.append(svg('polyline', { points: pts.join(' '), fill: 'none', stroke, 'stroke-width': '1.5', 'vector-effect': 'non-scaling-stroke' }));
	return s;
}

// A half-circle gauge of v in [min, max].
export function gauge(v, min, max, stroke) {
	const s = svg('svg', { class: 'gauge', viewBox: '0 0 120 70', 'aria-hidden': 'true' });
	const f = Number.isFinite(v) ? Math.min(1, Math.max(0, (v - min) / (max - min || 1))) : 0;
	const arc = (from, to) => {
		const a0 = Math.PI * (1 - from);
		const a1 = Math.PI * (1 - to);
		const p = (a) => `${(60 + 50 * Math.cos(a)).toFixed(2)} ${(62 - 50 * Math.sin(a)).toFixed(2)}`;
		return `M ${p(a0)} A 50 50 0 0 1 ${p(a1)}`;
	};
	s.append(svg('path', { d: arc(0, 1), fill: 'none', stroke: 'var(--grid)', 'stroke-width': '10' }));
	if (f > 0.001)
		s.append(svg('path', { d: arc(0, f), fill: 'none', stroke, 'stroke-width': '10' }));
	return s;
}
