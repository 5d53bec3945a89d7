// SPDX-License-Identifier: Apache-2.0
//
// app: novamon's web UI. Hash routes (the daemon serves one page at /):
//
//   #/login                      token sign-in (an empty token: no auth)
//   #/                           dashboards: open, create from a template, delete
//   #/d/ID                       a dashboard, live
//   #/d/ID/vm/VM                 drill-down: its widgets for one VM
//   #/d/ID/vm/VM/vcpu/N          ... and for one vCPU of it
//   #/d/ID/edit                  the dashboard editor
//   #/anomalies                  the anomaly list, with acknowledge
//
// Dashboard routes take ?range=5m|15m|1h|6h|24h|<N>s (relative, live) or
// ?from=MS&to=MS (absolute: zoomed, panned or custom; live updates pause).
// <main> carries data-view, data-ready and data-transport for tests.

import { api, download, Live, session, setUnauthorizedHandler } from './api.js';
import { showEditor } from './editor.js';
import { promString, restrictQuery, substitute } from './promql.js';
import { anomalyItem, fill, h, WidgetView } from './widgets.js';

const main = document.getElementById('main');
const statusEl = document.getElementById('status');
const PRESETS = [['5m', 300], ['15m', 900], ['1h', 3600], ['6h', 21600], ['24h', 86400]];
const DRILL_TYPES = new Set(['line', 'area', 'bar', 'heatmap', 'table', 'stat', 'gauge', 'progress']);
const phone = window.matchMedia('(max-width: 600px)');

let current = null; // the shown view: {destroy()}
let routeGen = 0; // bumped by each route(): a slower earlier one must not draw
let loginReason = '';
let statusTimer = null;

function status(msg, isError = false) {
	statusEl.textContent = msg;
	statusEl.classList.toggle('error', isError);
	clearTimeout(statusTimer);
	if (msg) statusTimer = setTimeout(() => { statusEl.textContent = ''; }, isError ? 15000 : 5000);
}

// ------------------------------------------------------------------
// Routing

function parseHash() {
	const raw = location.hash.replace(/^#/, '') || '/';
	const [path, qs] = raw.split('?');
	const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
	return { parts, q: new URLSearchParams(qs || '') };
}

function go(hash) {
	if (location.hash === hash) route();
	else location.hash = hash;
}

function setView(name) {
	main.dataset.view = name;
	main.dataset.ready = '0';
	delete main.dataset.transport;
}

async function route() {
	const gen = ++routeGen;
	current?.destroy?.();
	current = null;
	const { parts, q } = parseHash();
	const signedIn = session.active;
	document.getElementById('nav').hidden = !signedIn;
	document.getElementById('session').hidden = !signedIn;
	if (!signedIn || parts[0] === 'login') {
		showLogin();
		return;
	}
	document.getElementById('whoami').textContent = session.token ? 'signed in with a token' : 'no auth';
	try {
		if (parts[0] === 'd' && parts[1]) {
			if (parts[2] === 'edit') {
				setView('editor');
				await showEditor(main, parts[1], { status, go });
				main.dataset.ready = '1';
			} else {
				const drill = {};
				if (parts[2] === 'vm' && parts[3] !== undefined) drill.vm = parts[3];
				if (drill.vm !== undefined && parts[4] === 'vcpu' && parts[5] !== undefined) drill.vcpu = parts[5];
				current = new DashboardView(parts[1], drill, q);
				await current.show();
			}
		} else if (parts[0] === 'anomalies') {
			current = new AnomalyView(q);
			await current.show();
		} else {
			await showList(gen);
		}
	} catch (e) {
		if (e.status === 401 || gen !== routeGen) return;
		main.replaceChildren(h('h1', { tabindex: -1 }, 'Something went wrong'), h('p', { class: 'form-error' }, e.message),
			h('p', {}, h('a', { href: '#/' }, 'Back to the dashboards')));
		main.dataset.ready = '1';
	}
	if (gen === routeGen) main.querySelector('h1')?.focus({ preventScroll: true });
}

setUnauthorizedHandler((err) => {
	loginReason = err.message;
	session.end();
	go('#/login');
});

// ------------------------------------------------------------------
// Login

function showLogin() {
	setView('login');
	const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', spellcheck: 'false', placeholder: 'eyJhbGciOi…' });
	const err = h('p', { class: 'form-error', role: 'alert' }, loginReason);
	loginReason = '';
	const form = h('form', { class: 'login card', 'aria-labelledby': 'login-title' },
		h('h1', { id: 'login-title', tabindex: -1 }, 'Sign in to novamon'),
		h('div', { class: 'field' }, h('label', { for: 'token' }, 'Access token'), input,
			h('span', { class: 'muted small' }, 'A JWT from `novamon token create`. Leave it empty when the daemon runs without authentication (the loopback default).')),
		h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
		err);
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		err.textContent = '';
		const token = input.value.trim();
		try {
			await verifyToken(token);
		} catch (e2) {
			err.textContent = e2.status === 401
				? token
					? `The daemon refused this token: ${e2.message}`
					: 'This daemon needs a token: create one with `novamon token create --role viewer`.'
				: `Cannot sign in: ${e2.message}`;
			return;
		}
		session.start(token);
		const back = parseHash().parts[0] === 'login' ? '#/' : location.hash || '#/';
		go(back);
	});
	main.replaceChildren(form);
	main.dataset.ready = '1';
	input.focus();
}

// Resolves when the daemon accepts token (or needs none); rejects with ApiError.
async function verifyToken(token) {
	for (const path of ['/api/dashboards', '/api/v1/labels']) {
		try {
			await api(path, { token });
			return;
		} catch (e) {
			if (e.status !== 404 && e.status !== 503) throw e;
		}
	}
}

document.getElementById('logout').addEventListener('click', () => {
	session.end();
	go('#/login');
});

// ------------------------------------------------------------------
// Dashboard list

async function showList(gen) {
	setView('list');
	const r = await api('/api/dashboards');
	const list = r?.dashboards || [];
	let templates = [];
	try {
		templates = (await api('/api/dashboards/templates'))?.templates || [];
	} catch {
		templates = [];
	}
	if (gen !== routeGen) return;
	const name = h('input', { type: 'text', id: 'new-name', placeholder: 'Name (optional)' });
	const tpl = h('select', { id: 'new-template' }, h('option', { value: '' }, 'Empty dashboard'),
		templates.map((t) => h('option', { value: t.name }, `${t.name}: ${t.description || ''}`)));
	const create = h('form', { class: 'row create' },
		h('div', { class: 'field' }, h('label', { for: 'new-template' }, 'New dashboard from'), tpl),
		h('div', { class: 'field' }, h('label', { for: 'new-name' }, 'Name'), name),
		h('button', { type: 'submit' }, 'Create'));
	create.addEventListener('submit', async (e) => {
		e.preventDefault();
		const body = tpl.value ? { template: tpl.value } : { name: name.value || 'New dashboard', widgets: [] };
		if (tpl.value && name.value) body.name = name.value;
		try {
			const doc = await api('/api/dashboards', { method: 'POST', body });
			go(`#/d/${encodeURIComponent(doc.id)}/edit`);
		} catch (err) {
			status(`Cannot create: ${err.message}`, true);
		}
	});
	fill(main,
		h('h1', { tabindex: -1 }, 'Dashboards'),
		h('ul', { class: 'cards' }, list.map((d) => h('li', { class: 'card dash-card' },
			h('a', { href: `#/d/${encodeURIComponent(d.id)}`, class: 'dash-link', 'data-dashboard': d.id }, d.name || d.id),
			h('p', { class: 'muted small' }, [
				d.description,
				`${typeof d.widgets === 'number' ? d.widgets : (d.widgets || []).length} widgets`,
				`version ${d.version ?? '?'}`,
				d.tenant ? `tenant ${d.tenant}` : '',
			].filter(Boolean).join(' · ')),
			h('div', { class: 'row' },
				h('a', { class: 'button', href: `#/d/${encodeURIComponent(d.id)}/edit` }, 'Edit'),
				h('button', {
					type: 'button', class: 'danger',
					onclick: async () => {
						if (!confirm(`Delete the dashboard "${d.name}"?`)) return;
						try {
							await api(`/api/dashboards/${encodeURIComponent(d.id)}`, { method: 'DELETE', query: { version: d.version } });
							go('#/');
						} catch (err) {
							status(`Cannot delete: ${err.message}`, true);
						}
					},
				}, 'Delete'))))),
		list.length ? null : h('p', { class: 'muted' }, 'No dashboards yet.'),
		create);
	main.dataset.ready = '1';
}

// ------------------------------------------------------------------
// Time ranges

function rangeFromQuery(q, defaultSeconds) {
	if (q.get('from') && q.get('to')) {
		const from = Number(q.get('from'));
		const to = Number(q.get('to'));
		if (to > from) return { abs: true, from, to };
	}
	const r = q.get('range');
	const preset = PRESETS.find(([k]) => k === r);
	if (preset) return { abs: false, seconds: preset[1] };
	const m = /^(\d+)s$/.exec(r || '');
	if (m) return { abs: false, seconds: Number(m[1]) };
	return { abs: false, seconds: defaultSeconds || 3600 };
}

function rangeToQuery(range) {
	if (range.abs) return `from=${Math.round(range.from)}&to=${Math.round(range.to)}`;
	const preset = PRESETS.find(([, s]) => s === range.seconds);
	return `range=${preset ? preset[0] : `${range.seconds}s`}`;
}

// "2026-11-24T10:15" in local time, for datetime-local inputs.
function localInput(ms) {
	const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
	return d.toISOString().slice(0, 16);
}

// ------------------------------------------------------------------
// Dashboard (and drill-down) view

class DashboardView {
	constructor(id, drill, q) {
		this.id = id;
		this.drill = drill; // {} | {vm} | {vm, vcpu}
		this.level = drill.vcpu !== undefined ? 'vcpu' : drill.vm !== undefined ? 'vm' : 'dashboard';
		this.q = q;
		this.views = new Map();
		this.live = null;
		this.abort = null;
		this.destroyed = false;
	}

	destroy() {
		this.destroyed = true;
		clearInterval(this.tick);
		this.live?.stop();
		this.abort?.abort();
		for (const v of this.views.values()) v.destroy();
		phone.removeEventListener('change', this.onPhone);
	}

	win() {
		if (this.range.abs) return { start: this.range.from / 1000, end: this.range.to / 1000, live: false };
		const now = Date.now() / 1000;
		return { start: now - this.range.seconds, end: now, live: true };
	}

	baseHash() {
		let p = `#/d/${encodeURIComponent(this.id)}`;
		if (this.drill.vm !== undefined) p += `/vm/${encodeURIComponent(this.drill.vm)}`;
		if (this.drill.vcpu !== undefined) p += `/vcpu/${encodeURIComponent(this.drill.vcpu)}`;
		return p;
	}

	setRange(range) {
		go(`${this.baseHash()}?${rangeToQuery(range)}`);
	}

	// Where a series with these labels leads: one level down.
	drillTarget(labels, deep = false) {
		if (!labels) return null;
		const vm = labels.vm ?? this.drill.vm;
		if (this.level === 'dashboard' && labels.vm !== undefined && !(deep && labels.vcpu !== undefined))
			return { label: 'vm', vm: labels.vm, text: `VM ${labels.vm}` };
		if (this.level !== 'vcpu' && labels.vcpu !== undefined && vm !== undefined)
			return { label: 'vcpu', vm, vcpu: labels.vcpu, text: `vCPU ${labels.vcpu} of VM ${vm}` };
		return null;
	}

	drillHref(t) {
		let p = `#/d/${encodeURIComponent(this.id)}/vm/${encodeURIComponent(t.vm)}`;
		if (t.label === 'vcpu') p += `/vcpu/${encodeURIComponent(t.vcpu)}`;
		return `${p}?${rangeToQuery(this.range)}`;
	}

	// The widgets of this level: the dashboard's, or drill-down versions of them.
	widgets() {
		const ws = this.doc.widgets || [];
		if (this.level === 'dashboard') return ws;
		const { vm, vcpu } = this.drill;
		const out = [];
		if (this.level === 'vm')
			out.push({ id: 'drill-topology', type: 'topology', title: `VM ${vm}: vCPUs, devices, interfaces`, query: `novamon_vm_info{vm=${promString(vm)}}`, refresh_seconds: 30, position: { w: 12, h: 2 }, options: { levels: ['vm', 'vcpu', 'device', 'interface'] } });
		for (const w of ws) {
			if (!DRILL_TYPES.has(w.type)) continue;
			const dd = (w.drilldown || []).find((d) => d.label === this.level);
			const query = dd ? substitute(dd.query, { vm, vcpu }) : restrictQuery(w.query, { vm, vcpu });
			const what = this.level === 'vm' ? `VM ${vm}` : `VM ${vm} vCPU ${vcpu}`;
			out.push({ ...w, query, title: `${w.title} · ${what}` });
		}
		return out;
	}

	async show() {
		setView(this.level === 'dashboard' ? 'dashboard' : this.level);
		this.doc = await api(`/api/dashboards/${encodeURIComponent(this.id)}`);
		if (this.destroyed) return;
		this.range = rangeFromQuery(this.q, this.doc.time_range_seconds);
		const ctx = {
			win: () => this.win(),
			drillTarget: (l, deep) => this.drillTarget(l, deep),
			drillHref: (t) => this.drillHref(t),
			onSelect: (a, b) => this.setRange({ abs: true, from: a * 1000, to: b * 1000 }),
			ackAnomaly: (id, fp) => ackAnomaly(id, fp).then(() => { for (const v of this.views.values()) if (v.w.type === 'alert_list') { v.extraAt = 0; v.schedule(); } }),
			status,
			filter: this.drill,
			compact: phone.matches,
		};
		const grid = h('div', { class: 'grid' });
		for (const w of this.widgets()) {
			const v = new WidgetView(w, ctx);
			this.views.set(String(w.id), v);
			grid.append(v.el);
		}
		fill(main, this.header(), grid);
		// a phone layout draws charts shorter: redraw when the layout really changes
		this.onPhone = () => {
			if (phone.matches !== ctx.compact) route();
		};
		phone.addEventListener('change', this.onPhone);
		await this.load();
		if (this.destroyed) return;
		if (this.level !== 'dashboard') this.foldEmpty(grid);
		main.dataset.ready = '1';
		this.startLive();
	}

	// Drill-down views: hide the widgets that have nothing for this VM or vCPU.
	foldEmpty(grid) {
		const empty = [...this.views.values()].filter((v) => v.loaded && !v.series.size && !v.error && v.w.type !== 'topology');
		if (!empty.length) return;
		for (const v of empty) v.el.hidden = true;
		const btn = h('button', {
			type: 'button',
			class: 'fold',
			'aria-expanded': 'false',
			onclick: () => {
				const show = btn.getAttribute('aria-expanded') === 'false';
				for (const v of empty) v.el.hidden = !show;
				btn.setAttribute('aria-expanded', String(show));
				btn.textContent = show ? `Hide the ${empty.length} widgets without data` : `Show ${empty.length} more widgets (no data here)`;
			},
		}, `Show ${empty.length} more widgets (no data here)`);
		grid.after(h('p', {}, btn));
	}

	header() {
		const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Dashboards'));
		const rq = rangeToQuery(this.range);
		if (this.level !== 'dashboard') {
			crumbs.append(' › ', h('a', { href: `#/d/${encodeURIComponent(this.id)}?${rq}` }, this.doc.name));
			if (this.level === 'vcpu') crumbs.append(' › ', h('a', { href: `#/d/${encodeURIComponent(this.id)}/vm/${encodeURIComponent(this.drill.vm)}?${rq}` }, `VM ${this.drill.vm}`));
		}
		const title = this.level === 'dashboard' ? this.doc.name : this.level === 'vm' ? `VM ${this.drill.vm}` : `VM ${this.drill.vm} · vCPU ${this.drill.vcpu}`;

		// the time range picker
		const sel = h('select', { id: 'range', 'aria-label': 'Time range' },
			PRESETS.map(([k, s]) => h('option', { value: k, selected: !this.range.abs && this.range.seconds === s }, `Last ${k}`)),
			!this.range.abs && !PRESETS.some(([, s]) => s === this.range.seconds) ? h('option', { value: `${this.range.seconds}s`, selected: true }, `Last ${this.range.seconds} s`) : null,
			h('option', { value: 'custom', selected: this.range.abs }, 'Custom…'));
		const w = this.win();
		const from = h('input', { type: 'datetime-local', id: 'from', value: localInput(w.start * 1000), 'aria-label': 'From' });
		const to = h('input', { type: 'datetime-local', id: 'to', value: localInput(w.end * 1000), 'aria-label': 'To' });
		const custom = h('form', { class: 'custom-range', hidden: !this.range.abs },
			from, h('span', { 'aria-hidden': 'true' }, '–'), to, h('button', { type: 'submit' }, 'Apply'));
		custom.addEventListener('submit', (e) => {
			e.preventDefault();
			const a = new Date(from.value).getTime();
			const b = new Date(to.value).getTime();
			if (!(b > a)) {
				status('The end of a custom range must be after its start.', true);
				return;
			}
			this.setRange({ abs: true, from: a, to: b });
		});
		sel.addEventListener('change', () => {
			if (sel.value === 'custom') {
				custom.hidden = false;
				from.focus();
				return;
			}
			const preset = PRESETS.find(([k]) => k === sel.value);
			this.setRange({ abs: false, seconds: preset ? preset[1] : parseInt(sel.value, 10) });
		});
		const shift = (f) => () => {
			const cw = this.win();
			const span = (cw.end - cw.start) * 1000;
			let a = cw.start * 1000 + span * f;
			let b = cw.end * 1000 + span * f;
			if (b >= Date.now() && f > 0) {
				this.setRange({ abs: false, seconds: Math.round(span / 1000) });
				return;
			}
			this.setRange({ abs: true, from: a, to: b });
		};
		const zoomOut = () => {
			const cw = this.win();
			const span = cw.end - cw.start;
			if (!this.range.abs) {
				this.setRange({ abs: false, seconds: Math.round(span * 2) });
				return;
			}
			const mid = (cw.start + cw.end) / 2;
			this.setRange({ abs: true, from: (mid - span) * 1000, to: Math.min(Date.now(), (mid + span) * 1000) });
		};
		this.liveEl = h('span', { class: 'live-state', id: 'live-state', 'data-state': this.range.abs ? 'paused' : 'connecting' }, this.range.abs ? 'paused' : 'connecting…');
		const tools = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Time range' },
			sel, custom,
			h('button', { type: 'button', onclick: shift(-0.5), 'aria-label': 'Pan back half the range', 'data-action': 'pan-back' }, '◀'),
			h('button', { type: 'button', onclick: shift(0.5), 'aria-label': 'Pan forward half the range', 'data-action': 'pan-forward' }, '▶'),
			h('button', { type: 'button', onclick: zoomOut, 'data-action': 'zoom-out' }, 'Zoom out'),
			this.range.abs ? h('button', { type: 'button', class: 'primary', 'data-action': 'live', onclick: () => this.setRange({ abs: false, seconds: this.doc.time_range_seconds || 3600 }) }, 'Back to live') : null,
			this.liveEl);
		const actions = h('div', { class: 'toolbar' });
		if (this.level === 'dashboard') {
			actions.append(
				h('a', { class: 'button', href: `#/d/${encodeURIComponent(this.id)}/edit`, 'data-action': 'edit' }, 'Edit'),
				...['json', 'png', 'pdf'].map((fmt) => h('button', {
					type: 'button',
					onclick: () => {
						const cw = this.win();
						const qs = new URLSearchParams({ format: fmt, start: (cw.start).toFixed(3), end: (cw.end).toFixed(3) });
						download(`/api/dashboards/${encodeURIComponent(this.id)}/export?${qs}`, `${this.id}.${fmt}`).catch((e) => status(`Export failed: ${e.message}`, true));
					},
				}, `Export ${fmt.toUpperCase()}`)));
		}
		return h('div', { class: 'page-head' }, crumbs, h('div', { class: 'title-row' }, h('h1', { tabindex: -1 }, title), actions), tools,
			this.level !== 'dashboard' ? h('p', { class: 'muted small' }, 'Widget queries here are restricted to ', h('code', {}, Object.entries(this.drill).map(([k, v]) => `${k}=${promString(v)}`).join(', ')), '.') : null);
	}

	step() {
		const w = this.win();
		return Math.max(1, Math.round((w.end - w.start) / 250));
	}

	/*
	 * A full load of every widget over the window. A poll (poll = true) while
	 * a load is still running waits for that one instead of cutting it off.
	 */
	load(poll = false) {
		if (poll && this.loading) return this.loading;
		const p = this.fetchAll().finally(() => {
			if (this.loading === p) this.loading = null;
		});
		this.loading = p;
		return p;
	}

	async fetchAll() {
		this.abort?.abort();
		const ac = new AbortController();
		this.abort = ac;
		const w = this.win();
		const query = { start: w.start.toFixed(3), end: w.end.toFixed(3), step: this.step() };
		if (this.level === 'dashboard') {
			try {
				const r = await api(`/api/dashboards/${encodeURIComponent(this.id)}/data`, { query, signal: ac.signal });
				for (const one of r?.widgets || []) {
					const v = this.views.get(String(one.id));
					if (!v) continue;
					if (one.error) v.setError(one.error);
					else v.setResult(one.result);
				}
				return;
			} catch (e) {
				if (e.name === 'AbortError') return;
				if (e.status !== 404) {
					status(`Cannot load the dashboard data: ${e.message}`, true);
					return;
				}
				// no /data route: ask for each widget below
			}
		}
		await Promise.all([...this.views.values()].map(async (v) => {
			if (!v.w.query) return;
			try {
				const r = await api('/api/v1/query_range', { query: { ...query, query: v.w.query }, signal: ac.signal });
				v.setResult(r?.data);
			} catch (e) {
				if (e.name !== 'AbortError') v.setError(e.message);
			}
		}));
	}

	startLive() {
		const state = (t) => {
			main.dataset.transport = t;
			if (!this.liveEl) return;
			this.liveEl.textContent = { ws: '● live (WebSocket)', 'ws-metrics': '● live (WebSocket)', poll: '● live (polling)', connecting: 'connecting…', paused: this.range.abs ? 'paused: a fixed time range' : 'paused' }[t] || t;
			this.liveEl.dataset.state = t;
		};
		if (this.range.abs) {
			state('paused');
			return;
		}
		const ws = [...this.views.values()].filter((v) => v.w.query);
		// polling reloads everything: not more often than every 2 s
		const refresh = Math.max(2, Math.min(...ws.map((v) => v.w.refresh_seconds || 10), 30));
		this.live = new Live({
			dashboardId: this.level === 'dashboard' ? this.id : null,
			subs: ws.map((v) => ({ id: String(v.w.id), query: v.w.query })),
			pollSeconds: refresh,
			onData: (id, msg, first) => this.views.get(id)?.applyLive(msg, first),
			reload: () => this.load(true),
			onState: state,
		});
		this.live.start();
		// a relative window moves on even between updates
		this.tick = setInterval(() => {
			for (const v of this.views.values()) {
				if (v.chart || v.canvas) {
					v.trim();
					v.schedule();
				}
			}
		}, 5000);
	}
}

// ------------------------------------------------------------------
// Anomalies

async function ackAnomaly(id, falsePositive) {
	await api(`/api/anomalies/${encodeURIComponent(id)}/acknowledge`, { method: 'POST', body: { false_positive: !!falsePositive } });
	status(falsePositive ? 'Marked as a false positive.' : 'Anomaly acknowledged.');
	refreshBadge();
}

class AnomalyView {
	constructor(q) {
		this.state = q.get('state') || 'open';
		this.timer = null;
	}

	destroy() {
		clearInterval(this.timer);
	}

	async show() {
		setView('anomalies');
		const sel = h('select', { id: 'anomaly-state' },
			[['open', 'Open'], ['unacknowledged', 'Unacknowledged'], ['acknowledged', 'Acknowledged'], ['closed', 'Closed'], ['', 'All']]
				.map(([v, t]) => h('option', { value: v, selected: v === this.state }, t)));
		sel.addEventListener('change', () => go(`#/anomalies${sel.value ? `?state=${sel.value}` : '?state='}`));
		this.list = h('ul', { class: 'anomalies full', 'aria-live': 'polite' });
		this.note = h('p', { class: 'muted' });
		main.replaceChildren(h('h1', { tabindex: -1 }, 'Anomalies'),
			h('div', { class: 'toolbar' }, h('label', { for: 'anomaly-state' }, 'Show'), sel,
				h('button', { type: 'button', onclick: () => this.load() }, 'Refresh')),
			this.list, this.note);
		await this.load();
		main.dataset.ready = '1';
		this.timer = setInterval(() => { if (!document.hidden) this.load(); }, 10000);
	}

	async load() {
		let r;
		try {
			r = await api('/api/anomalies', { query: { state: this.state || undefined } });
		} catch (e) {
			this.note.textContent = e.status === 404 ? 'This daemon has no anomaly API.' : `Cannot load anomalies: ${e.message}`;
			return;
		}
		const items = (r?.data?.anomalies || []).slice().sort((a, b) => String(b.start).localeCompare(String(a.start), undefined, { numeric: true }));
		const ctx = { ackAnomaly: (id, fp) => ackAnomaly(id, fp).then(() => this.load()), status };
		this.list.replaceChildren(...items.map((a) => anomalyItem(a, ctx)));
		this.note.textContent = items.length ? `${items.length} anomalies.` : 'No anomalies.';
	}
}

async function refreshBadge() {
	const badge = document.getElementById('anomaly-count');
	if (!session.active) return;
	try {
		const r = await api('/api/anomalies', { query: { state: 'unacknowledged' } });
		const n = (r?.data?.anomalies || []).filter((a) => a.state !== 'closed').length;
		badge.textContent = String(n);
		badge.hidden = !n;
		badge.setAttribute('aria-label', `${n} unacknowledged`);
	} catch {
		badge.hidden = true;
	}
}

window.addEventListener('hashchange', route);
route();
refreshBadge();
setInterval(() => { if (!document.hidden) refreshBadge(); }, 15000);
