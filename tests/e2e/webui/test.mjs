// SPDX-License-Identifier: Apache-2.0
//
// The web UI in a real browser: Debian's chromium (/usr/bin/chromium) driven
// by playwright-core against a running novamon. tests/e2e/test_webui.py
// starts the daemon, the load and the anomaly, then runs this; it can also be
// run by hand against any daemon:
//
//   NOVAMON_URL=http://127.0.0.1:9477 [NOVAMON_TOKEN=...] node test.mjs
//
// Environment:
//   NOVAMON_URL          the daemon (required)
//   NOVAMON_TOKEN        an admin token; empty: the daemon runs without auth
//   NOVAMON_AUTH         "on": the daemon enforces tokens (bad ones are tried too)
//   NOVAMON_ARTIFACTS    where screenshots go (default ./webui-artifacts)
//   NOVAMON_LIVE_CHART   title of an operations chart that must update live
//                        ("Disk throughput" with block load); default: any chart
//   NOVAMON_KVM_VM       the running KVM test guest's vm label, if any: its
//                        drill-down view must show data that updates live
//   NOVAMON_SIGNAL       a metric ingested every second with labels vm and
//                        vcpu (default novamon_e2e_signal), for the editor,
//                        live and drill-down checks
//   NOVAMON_ANOMALY_DEADLINE  epoch ms until which to wait for an anomaly
//   CHROMIUM             the browser (default /usr/bin/chromium)
//
// Each check prints "ok - NAME" or "not ok - NAME: why"; the last line is
// "N passed, N failed". Exit status 0 when every check passed, else 1.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = (process.env.NOVAMON_URL || '').replace(/\/$/, '');
const TOKEN = process.env.NOVAMON_TOKEN || '';
const AUTH_ON = process.env.NOVAMON_AUTH === 'on';
const ART = path.resolve(process.env.NOVAMON_ARTIFACTS || 'webui-artifacts');
const LIVE_CHART = process.env.NOVAMON_LIVE_CHART || '';
const KVM_VM = process.env.NOVAMON_KVM_VM || '';
const SIGNAL = process.env.NOVAMON_SIGNAL || 'novamon_e2e_signal';
const ANOMALY_DEADLINE = Number(process.env.NOVAMON_ANOMALY_DEADLINE || Date.now() + 120000);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const DASH = 'operations';
const E2E_TITLE = `E2E signal ${process.pid}`; // unique: a rerun on the same store adds another

if (!BASE) {
	console.error('test.mjs: set NOVAMON_URL');
	process.exit(2);
}
fs.mkdirSync(ART, { recursive: true });

let passed = 0;
let failed = 0;
const pageErrors = [];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The daemon's API from the test itself (not through the page).
async function apiCall(p, { method = 'GET', body, token = TOKEN } = {}) {
	const headers = token ? { Authorization: `Bearer ${token}` } : {};
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	const res = await fetch(BASE + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
	const text = await res.text();
	let json = null;
	try {
		json = text ? JSON.parse(text) : null;
	} catch {
		json = null;
	}
	return { status: res.status, json, text, headers: res.headers };
}

async function shot(page, name, fullPage = true) {
	const file = path.join(ART, `${name}.png`);
	await page.screenshot({ path: file, fullPage });
	console.log(`# screenshot ${file}`);
}

async function check(name, page, fn) {
	try {
		await fn();
		passed++;
		console.log(`ok - ${name}`);
	} catch (e) {
		failed++;
		console.log(`not ok - ${name}: ${e.message.split('\n')[0]}`);
		if (process.env.NOVAMON_WEBUI_DEBUG) console.log(e.stack);
		try {
			await shot(page, `fail-${name.replace(/[^a-z0-9]+/gi, '-')}`);
		} catch {
			/* the page is gone */
		}
	}
}

function assert(cond, msg) {
	if (!cond) throw new Error(msg);
}

const ready = (page, view) => page.waitForSelector(`main[data-view="${view}"][data-ready="1"]`, { timeout: 30000 });

async function open(page, hash, view) {
	await page.goto(`${BASE}/${hash}`);
	await ready(page, view);
}

// data-last-t of the widget titled title (on the current page).
async function widgetState(page, title) {
	return page.evaluate((t) => {
		const w = [...document.querySelectorAll('.widget')].find((x) => x.querySelector('h2')?.textContent === t);
		if (!w) return null;
		return { lastT: Number(w.dataset.lastT || 0), points: Number(w.dataset.points || 0), series: Number(w.dataset.series || 0), updates: Number(w.dataset.updates || 0) };
	}, title);
}

// Wait until the widget titled title shows series, then for its newest point to move on.
async function seesLiveUpdate(page, title, waitMs = 3000) {
	let a = null;
	const until = Date.now() + 30000;
	while (Date.now() < until) {
		a = await widgetState(page, title);
		if (a && a.series > 0 && a.lastT > 0) break;
		await sleep(500);
	}
	assert(a && a.series > 0, `"${title}" shows no series: ${JSON.stringify(a)}`);
	await sleep(waitMs);
	let b = await widgetState(page, title);
	const until2 = Date.now() + 10000;
	while (b.lastT <= a.lastT && Date.now() < until2) {
		await sleep(500);
		b = await widgetState(page, title);
	}
	assert(b.lastT > a.lastT, `"${title}": newest point still at ${a.lastT} after ${waitMs} ms (+10 s)`);
	return { a, b };
}

async function main() {
	const browser = await chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
			'--disable-component-update', '--disable-sync'],
	});
	const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
	const page = await context.newPage();
	page.on('pageerror', (e) => pageErrors.push(e.message));
	page.setDefaultTimeout(20000);

	await check('serves / and /static/ with ETags (304 when unchanged)', page, async () => {
		for (const p of ['/', '/static/app.js', '/static/uPlot.iife.min.js', '/static/style.css']) {
			const r = await fetch(BASE + p);
			assert(r.status === 200, `${p}: ${r.status}`);
			const etag = r.headers.get('etag');
			assert(etag, `${p}: no ETag`);
			const ct = r.headers.get('content-type') || '';
			const want = p === '/' ? 'text/html' : p.endsWith('.js') ? 'text/javascript' : 'text/css';
			assert(ct.startsWith(want), `${p}: content-type ${ct}`);
			const again = await fetch(BASE + p, { headers: { 'If-None-Match': etag } });
			assert(again.status === 304, `${p} with If-None-Match: ${again.status}`);
		}
		const missing = await fetch(`${BASE}/static/no-such-file.js`);
		assert(missing.status === 404, `a missing file: ${missing.status}`);
	});

	await check('login', page, async () => {
		await page.goto(`${BASE}/`);
		await ready(page, 'login');
		await shot(page, '00-login', false);
		if (AUTH_ON) {
			await page.fill('#token', '');
			await page.click('form.login button[type=submit]');
			await page.waitForSelector('form.login .form-error:has-text("needs a token")');
			await page.fill('#token', `${TOKEN}x`);
			await page.click('form.login button[type=submit]');
			await page.waitForSelector('form.login .form-error:has-text("refused")');
		}
		await page.fill('#token', TOKEN);
		await page.click('form.login button[type=submit]');
		await ready(page, 'list');
		await page.waitForSelector(`a[data-dashboard="${DASH}"]`);
		const stored = await page.evaluate(() => sessionStorage.getItem('novamon.token'));
		assert(stored === TOKEN, 'the token is not in sessionStorage');
	});

	await check('operations dashboard renders every widget', page, async () => {
		await page.click(`a[data-dashboard="${DASH}"]`);
		await ready(page, 'dashboard');
		const doc = (await apiCall(`/api/dashboards/${DASH}`)).json;
		const n = await page.locator('.widget').count();
		assert(n === doc.widgets.length, `${n} widgets on screen, the dashboard has ${doc.widgets.length}`);
		const broken = await page.locator('.w-msg:has-text("Cannot draw")').count();
		assert(!broken, `${broken} widgets failed to draw`);
		await sleep(1500);
		await shot(page, '01-operations');
	});

	await check('live updates over the WebSocket', page, async () => {
		await page.waitForFunction(() => ['ws', 'ws-metrics', 'poll'].includes(document.querySelector('main').dataset.transport), null, { timeout: 40000 });
		const transport = await page.evaluate(() => document.querySelector('main').dataset.transport);
		let title = LIVE_CHART;
		if (!title) {
			title = await page.evaluate(() => {
				const w = [...document.querySelectorAll('.widget')].find((x) => ['line', 'area', 'stat', 'gauge'].includes(x.dataset.type) && Number(x.dataset.series) > 0);
				return w ? w.querySelector('h2').textContent : '';
			});
		}
		assert(title, 'no widget has data to watch');
		const { a, b } = await seesLiveUpdate(page, title);
		console.log(`# "${title}" over ${transport}: newest point ${a.lastT} -> ${b.lastT}`);
		assert(transport === 'ws' || transport === 'ws-metrics', `the page updated by polling: no WebSocket feed (${transport})`);
	});

	await check('dashboard editor: add a widget, save, 409 on a conflict', page, async () => {
		await open(page, `#/d/${DASH}/edit`, 'editor');
		const before = (await apiCall(`/api/dashboards/${DASH}`)).json;
		await page.click('button[data-action="add-widget"]');
		const last = page.locator('li.w-edit').last();
		await last.locator('select').selectOption('line');
		await last.locator('[data-field="title"]').fill(E2E_TITLE);
		await last.locator('[data-field="query"]').fill(SIGNAL);
		await last.locator('[data-field="refresh_seconds"]').fill('1');
		await last.locator('[data-field="options"]').fill('{"legend":true}');
		await page.click('button[data-action="save"]');
		await page.waitForSelector(`#status:has-text("version ${before.version + 1}")`);
		const after = (await apiCall(`/api/dashboards/${DASH}`)).json;
		assert(after.version === before.version + 1, `version ${after.version} after saving version ${before.version}`);
		const w = after.widgets.find((x) => x.title === E2E_TITLE);
		assert(w && w.query === SIGNAL && w.type === 'line', `the saved widget: ${JSON.stringify(w)}`);
		// someone else saves in between: the editor's next save gets 409
		const put = await apiCall(`/api/dashboards/${DASH}`, { method: 'PUT', body: { ...after, description: 'changed behind the editor' } });
		assert(put.status === 200, `PUT from the test: ${put.status} ${put.text}`);
		await page.locator('[data-field="name"]').fill(`${after.name}`);
		await page.click('button[data-action="save"]');
		await page.waitForSelector('[data-conflict="true"]');
		await page.locator('[data-conflict="true"]').scrollIntoViewIfNeeded();
		await shot(page, '02-editor-conflict', false);
		await page.click('button:has-text("Reload their version")');
		await page.waitForSelector(`text=Version ${after.version + 1}`);
	});

	await check(`live updates of a new chart (${SIGNAL})`, page, async () => {
		await open(page, `#/d/${DASH}?range=5m`, 'dashboard');
		await seesLiveUpdate(page, E2E_TITLE);
	});

	await check('drill-down host -> VM -> vCPU', page, async () => {
		const widget = page.locator('.widget', { has: page.locator(`h2:text-is("${E2E_TITLE}")`) });
		await widget.locator('a[data-drill="vm"]').first().click();
		await ready(page, 'vm');
		const vmTitle = await page.textContent('h1');
		assert(/^VM /.test(vmTitle), `the VM view is titled "${vmTitle}"`);
		const drilled = page.locator('.widget', { has: page.locator(`h2:text-matches("^${E2E_TITLE} · VM")`) });
		await drilled.locator('a[data-drill="vcpu"]').first().waitFor();
		await shot(page, '03-vm');
		await drilled.locator('a[data-drill="vcpu"]').first().click();
		await ready(page, 'vcpu');
		const h1 = await page.textContent('h1');
		assert(/vCPU/.test(h1), `the vCPU view is titled "${h1}"`);
		const state = await page.evaluate(() => [...document.querySelectorAll('.widget')].map((w) => Number(w.dataset.series)));
		assert(state.some((n) => n > 0), 'no widget of the vCPU view has data');
		await shot(page, '04-vcpu');
		if (KVM_VM) {
			// the running KVM test guest: its VM view has live data
			await open(page, `#/d/${DASH}/vm/${encodeURIComponent(KVM_VM)}?range=5m`, 'vm');
			const handle = await page.waitForFunction(() => {
				const w = [...document.querySelectorAll('.widget')].find((x) => x.dataset.type !== 'topology' && Number(x.dataset.series) > 0);
				return w ? w.querySelector('h2').textContent : false;
			}, null, { timeout: 30000 });
			const title = await handle.jsonValue();
			await seesLiveUpdate(page, title);
			console.log(`# KVM guest ${KVM_VM}: "${title}" updates live`);
			await shot(page, '05-kvm-vm');
		}
	});

	await check('time range picker, zoom and pan', page, async () => {
		await open(page, `#/d/${DASH}`, 'dashboard');
		await page.selectOption('#range', '15m');
		await page.waitForFunction(() => location.hash.includes('range=15m'));
		await ready(page, 'dashboard');
		const plot = page.locator('.widget', { has: page.locator(`h2:text-is("${E2E_TITLE}")`) }).locator('.plot');
		await plot.waitFor();
		await page.waitForFunction((t) => {
			const w = [...document.querySelectorAll('.widget')].find((x) => x.querySelector('h2')?.textContent === t);
			return w && Number(w.dataset.series) > 0;
		}, E2E_TITLE);
		const span = await plot.evaluate((e) => Number(e.dataset.xMax) - Number(e.dataset.xMin));
		assert(Math.abs(span - 900000) < 5000, `a 15 min range plots ${span} ms`);
		// select-to-zoom: drag across the middle of the plot area
		const over = plot.locator('.u-over');
		await over.scrollIntoViewIfNeeded();
		const box = await over.boundingBox();
		await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
		await page.mouse.down();
		await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 8 });
		await page.mouse.up();
		await page.waitForFunction(() => /from=\d+&to=\d+/.test(location.hash));
		await ready(page, 'dashboard');
		const m = /from=(\d+)&to=(\d+)/.exec(await page.evaluate(() => location.hash));
		const zoomed = Number(m[2]) - Number(m[1]);
		assert(zoomed > 60000 && zoomed < 400000, `the zoomed range is ${zoomed} ms, not about a fifth of 15 min`);
		// the hash changes before the view re-renders: wait for the new one's state
		await page.waitForSelector('#live-state[data-state="paused"]', { timeout: 10000 }).catch(() => {});
		assert(await page.locator('#live-state[data-state="paused"]').count(), 'live updates did not pause on a fixed range');
		await page.click('button[data-action="pan-back"]');
		await page.waitForFunction((from) => {
			const mm = /from=(\d+)/.exec(location.hash);
			return mm && Number(mm[1]) < from;
		}, Number(m[1]));
		await page.click('button[data-action="live"]');
		await page.waitForFunction(() => location.hash.includes('range='));
		await ready(page, 'dashboard');
	});

	await check('acknowledge an anomaly', page, async () => {
		let anomaly = null;
		let lastStatus = '';
		while (Date.now() < ANOMALY_DEADLINE) {
			const r = await apiCall('/api/anomalies?state=unacknowledged');
			lastStatus = `${r.status} ${r.text.slice(0, 200)}`;
			if (r.status === 404) throw new Error('GET /api/anomalies answers 404: the daemon has no anomaly API');
			const list = r.json?.data?.anomalies || [];
			anomaly = list.find((a) => a.metric === SIGNAL || a.labels?.__name__ === SIGNAL) || list[0];
			if (anomaly) break;
			await sleep(2000);
		}
		assert(anomaly, `no unacknowledged anomaly by the deadline (last answer: ${lastStatus})`);
		console.log(`# anomaly ${anomaly.id}: ${anomaly.metric} ${JSON.stringify(anomaly.labels)} score ${anomaly.score}`);
		await open(page, '#/anomalies?state=', 'anomalies');
		const item = page.locator(`li[data-anomaly-id="${anomaly.id}"]`);
		await item.waitFor();
		await shot(page, '06-anomalies-before');
		await item.locator('button[data-action="ack"]').click();
		await page.waitForSelector(`li[data-anomaly-id="${anomaly.id}"][data-acknowledged="true"]`);
		const acked = await apiCall('/api/anomalies?state=acknowledged');
		const a = (acked.json?.data?.anomalies || []).find((x) => String(x.id) === String(anomaly.id));
		assert(a && (a.acknowledged === true || a.state === 'acknowledged'), `the API does not list ${anomaly.id} as acknowledged: ${acked.text.slice(0, 300)}`);
		await shot(page, '07-anomalies-acknowledged');
	});

	await check('phone width (360 px): nothing overflows horizontally', page, async () => {
		await page.setViewportSize({ width: 360, height: 740 });
		for (const [hash, view] of [[`#/d/${DASH}`, 'dashboard'], ['#/anomalies', 'anomalies'], [`#/d/${DASH}/edit`, 'editor'], ['#/', 'list']]) {
			await open(page, hash, view);
			await sleep(1500);
			const bad = await page.evaluate(() => {
				const vw = document.documentElement.clientWidth;
				const out = [];
				if (document.documentElement.scrollWidth > vw + 1) out.push(`the page is ${document.documentElement.scrollWidth} px wide`);
				// an element may be wider only inside a container that scrolls
				const scrolls = (e) => {
					for (let p = e.parentElement; p; p = p.parentElement) {
						const ox = getComputedStyle(p).overflowX;
						if (ox === 'auto' || ox === 'scroll' || ox === 'hidden') return true;
					}
					return false;
				};
				for (const e of document.querySelectorAll('body *')) {
					const r = e.getBoundingClientRect();
					if (!r.width || r.right <= vw + 1 || scrolls(e)) continue;
					out.push(`${e.tagName.toLowerCase()}.${[...e.classList].join('.')} ends at ${Math.round(r.right)} px`);
					if (out.length > 5) break;
				}
				return out;
			});
			assert(!bad.length, `${hash}: ${bad.join('; ')}`);
			await shot(page, `08-phone-${view}`);
		}
		await page.setViewportSize({ width: 1366, height: 900 });
	});

	await check('no uncaught errors in the page', page, async () => {
		assert(!pageErrors.length, pageErrors.slice(0, 3).join(' | '));
	});

	await browser.close();
}

try {
	await main();
} catch (e) {
	failed++;
	console.log(`not ok - test run: ${e.message}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
