// SPDX-License-Identifier: Apache-2.0
//
// editor: the dashboard editor. Edits a copy of the document (name, time
// range, widgets: type, title, query, unit, thresholds, refresh, size,
// options), then saves it with PUT /api/dashboards/{id} carrying the version
// it was read at. A 409 means someone saved in between: the editor says so
// and offers to reload their version (the local edits are then lost) or to
// keep editing. Widget fields it does not show (id, drilldown, acl,
// position.x/y) are kept as they were.

import { api, ApiError } from './api.js';
import { h } from './widgets.js';

export const WIDGET_TYPES = ['line', 'area', 'bar', 'heatmap', 'gauge', 'status', 'progress', 'alert_list', 'table', 'log_stream', 'topology', 'stat'];
const UNITS = ['', 'percentunit', 'percent', 'bytes', 'bytes/s', 'seconds', 'cores', 'events/s', 'exits/s'];

// "0:green, 0.7:orange" <-> [{value, color}]
export function thresholdsToText(th) {
	return (th || []).map((t) => `${t.value}:${t.color}${t.label ? `:${t.label}` : ''}`).join(', ');
}

export function textToThresholds(text) {
	const out = [];
	for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
		const [v, c, ...label] = part.split(':');
		const value = Number(v);
		if (!Number.isFinite(value) || !c) throw new Error(`threshold "${part}": write value:color, e.g. 0.9:red`);
		const t = { value, color: c.trim() };
		if (label.length) t.label = label.join(':').trim();
		out.push(t);
	}
	out.sort((a, b) => a.value - b.value);
	return out;
}

let uid = 0;

/*
 * Show the editor for dashboard id in root. app: status(msg, isError),
 * go(hash). Resolves when the first load is done.
 */
export async function showEditor(root, id, app) {
	let doc;
	let dirty = false;
	const errorBox = h('div', { class: 'form-error', role: 'alert' });
	const form = h('form', { class: 'editor', novalidate: true });
	const list = h('ol', { class: 'w-edit-list' });
	// the typed text of the fields that need parsing, kept across redraws
	const raw = new WeakMap();
	const openWidgets = new WeakSet(); // whose <details> are open, across redraws
	const rawOf = (w) => {
		if (!raw.has(w)) raw.set(w, { th: thresholdsToText(w.thresholds), opts: JSON.stringify(w.options || {}) });
		return raw.get(w);
	};

	async function load() {
		doc = await api(`/api/dashboards/${encodeURIComponent(id)}`);
		doc.widgets = doc.widgets || [];
		dirty = false;
		draw();
	}

	function field(label, input, hint) {
		const fid = `f${++uid}`;
		input.id = fid;
		return h('div', { class: 'field' }, h('label', { for: fid }, label), input, hint ? h('span', { class: 'muted small' }, hint) : null);
	}

	function widgetForm(w, i) {
		const pos = w.position || (w.position = {});
		const set = (k) => (e) => {
			w[k] = e.target.value;
			dirty = true;
		};
		const type = h('select', { onchange: (e) => { w.type = e.target.value; w.options = {}; rawOf(w).opts = '{}'; dirty = true; draw(); } },
			WIDGET_TYPES.map((t) => h('option', { value: t, selected: t === w.type }, t)));
		const unitList = `units-${i}`;
		const r = rawOf(w);
		const optionsText = h('textarea', { rows: 2, spellcheck: 'false', 'data-field': 'options', oninput: (e) => { r.opts = e.target.value; dirty = true; } });
		optionsText.value = r.opts;
		const thresholds = h('input', { type: 'text', value: r.th, placeholder: '0:green, 0.9:red', 'data-field': 'thresholds', oninput: (e) => { r.th = e.target.value; dirty = true; } });
		const move = (d) => () => {
			const j = i + d;
			if (j < 0 || j >= doc.widgets.length) return;
			[doc.widgets[i], doc.widgets[j]] = [doc.widgets[j], doc.widgets[i]];
			dirty = true;
			draw();
		};
		const query = h('textarea', { rows: 2, spellcheck: 'false', required: true, oninput: set('query'), 'data-field': 'query' });
		query.value = w.query || '';
		const details = h('details', { open: openWidgets.has(w), ontoggle: () => (details.open ? openWidgets.add(w) : openWidgets.delete(w)) },
			h('summary', {}, h('strong', {}, w.title || '(untitled)'), h('span', { class: 'muted small' }, ` ${w.type} · ${w.query || 'no query yet'}`)));
		details.append(
			h('fieldset', {},
				h('legend', { class: 'sr-only' }, `Widget ${i + 1}: ${w.title || w.type}`),
				h('div', { class: 'row' },
					field('Type', type),
					field('Title', h('input', { type: 'text', value: w.title || '', oninput: set('title'), 'data-field': 'title' })),
					field('Unit', h('input', { type: 'text', value: w.unit || '', list: unitList, oninput: set('unit'), 'data-field': 'unit' })),
					h('datalist', { id: unitList }, UNITS.map((u) => h('option', { value: u })))),
				field('Query (PromQL)', query),
				h('div', { class: 'row' },
					field('Thresholds', thresholds, 'value:color, ascending'),
					field('Refresh (s)', h('input', { type: 'number', min: 1, max: 3600, value: w.refresh_seconds ?? 10, oninput: (e) => { w.refresh_seconds = Number(e.target.value); dirty = true; }, 'data-field': 'refresh_seconds' })),
					field('Width (of 12)', h('input', { type: 'number', min: 1, max: 12, value: pos.w ?? 6, oninput: (e) => { pos.w = Number(e.target.value); dirty = true; } })),
					field('Height', h('input', { type: 'number', min: 1, max: 12, value: pos.h ?? 3, oninput: (e) => { pos.h = Number(e.target.value); dirty = true; } }))),
				field('Options (JSON)', optionsText, `for ${w.type}; see the dashboard API`),
				h('div', { class: 'row actions' },
					h('button', { type: 'button', onclick: move(-1), disabled: i === 0, 'aria-label': `Move widget ${i + 1} up` }, '↑ Up'),
					h('button', { type: 'button', onclick: move(1), disabled: i === doc.widgets.length - 1, 'aria-label': `Move widget ${i + 1} down` }, '↓ Down'),
					h('button', { type: 'button', class: 'danger', 'data-action': 'remove-widget', onclick: () => { doc.widgets.splice(i, 1); dirty = true; draw(); } }, 'Remove'))));
		return h('li', { class: 'w-edit', 'data-index': i }, details);
	}

	// Parse the typed thresholds and options into doc; throws with the widget named.
	function collect() {
		doc.widgets.forEach((w, i) => {
			const r = rawOf(w);
			try {
				w.thresholds = textToThresholds(r.th);
			} catch (e) {
				throw new Error(`widget ${i + 1}: ${e.message}`);
			}
			const ot = r.opts.trim();
			try {
				w.options = ot ? JSON.parse(ot) : {};
			} catch (e) {
				throw new Error(`widget ${i + 1}: options are not JSON (${e.message})`);
			}
			if (!w.query || !w.query.trim()) throw new Error(`widget ${i + 1}: a query is needed`);
		});
	}

	async function save(e) {
		e.preventDefault();
		errorBox.replaceChildren();
		try {
			collect();
		} catch (err) {
			errorBox.append(h('p', {}, err.message));
			return;
		}
		const saveBtn = form.querySelector('button[type=submit]');
		saveBtn.disabled = true;
		try {
			const saved = await api(`/api/dashboards/${encodeURIComponent(id)}`, { method: 'PUT', body: doc });
			doc = saved || doc;
			dirty = false;
			app.status(`Saved "${doc.name}" (version ${doc.version}).`);
			draw();
		} catch (err) {
			if (err instanceof ApiError && err.status === 409) {
				errorBox.append(
					h('p', { 'data-conflict': 'true' }, `Conflict: someone else saved this dashboard after you opened it (you edited version ${doc.version}). ${err.message}`),
					h('div', { class: 'row' },
						h('button', { type: 'button', onclick: () => load().then(() => app.status('Reloaded the saved version.')) }, 'Reload their version (discard mine)'),
						h('button', { type: 'button', onclick: () => errorBox.replaceChildren() }, 'Keep editing')));
			} else {
				errorBox.append(h('p', {}, `Not saved: ${err.message}`));
			}
		} finally {
			saveBtn.disabled = false;
		}
	}

	function draw() {
		const name = h('input', { type: 'text', value: doc.name || '', required: true, oninput: (e) => { doc.name = e.target.value; dirty = true; }, 'data-field': 'name' });
		const range = h('input', { type: 'number', min: 60, value: doc.time_range_seconds ?? 3600, oninput: (e) => { doc.time_range_seconds = Number(e.target.value); dirty = true; } });
		list.replaceChildren(...doc.widgets.map(widgetForm));
		form.replaceChildren(
			h('div', { class: 'row' }, field('Name', name), field('Default time range (s)', range)),
			h('p', { class: 'muted small' }, `Version ${doc.version ?? '?'}${doc.updated ? ` · updated ${new Date(doc.updated).toLocaleString()}` : ''}`),
			list,
			h('div', { class: 'row actions sticky' },
				h('button', {
					type: 'button',
					'data-action': 'add-widget',
					onclick: () => {
						const w = { type: 'line', title: 'New widget', query: '', unit: '', refresh_seconds: 10, thresholds: [], options: {}, position: { w: 6, h: 4 } };
						doc.widgets.push(w);
						openWidgets.add(w);
						dirty = true;
						draw();
						const title = list.lastElementChild?.querySelector('[data-field=title]');
						title?.focus();
						title?.select();
					},
				}, '+ Add widget'),
				h('button', { type: 'submit', class: 'primary', 'data-action': 'save' }, 'Save'),
				h('a', { class: 'button', href: `#/d/${encodeURIComponent(id)}`, onclick: (e) => { if (dirty && !confirm('Leave without saving?')) e.preventDefault(); } }, 'Close'),
				errorBox));
	}

	form.addEventListener('submit', save);
	root.replaceChildren(h('h1', { tabindex: -1 }, 'Edit dashboard'), form);
	await load();
	if (form.isConnected) root.querySelector('h1').textContent = `Edit: ${doc.name}`;
}
