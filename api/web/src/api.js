// SPDX-License-Identifier: Apache-2.0
//
// api: the session token, JSON calls to the daemon, and live feeds.
//
// The token lives in sessionStorage (gone with the tab). An empty token is a
// session without auth (a loopback daemon with auth off). Every call sends
// "Authorization: Bearer <token>" when there is one; WebSockets take it as
// ?access_token=. A 401 anywhere ends the session (the app shows the login
// screen with the server's reason).

const TOKEN_KEY = 'novamon.token';
const SESSION_KEY = 'novamon.session';

export class ApiError extends Error {
	constructor(status, message, body) {
		super(message);
		this.status = status;
		this.body = body;
	}
}

export const session = {
	get active() {
		return sessionStorage.getItem(SESSION_KEY) === '1';
	},
	get token() {
		return sessionStorage.getItem(TOKEN_KEY) || '';
	},
	start(token) {
		sessionStorage.setItem(TOKEN_KEY, token);
		sessionStorage.setItem(SESSION_KEY, '1');
	},
	end() {
		sessionStorage.removeItem(TOKEN_KEY);
		sessionStorage.removeItem(SESSION_KEY);
	},
};

// Handlers of a 401 (set by the app).
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
	onUnauthorized = fn;
}

function authHeaders(token) {
	return token ? { Authorization: `Bearer ${token}` } : {};
}

// The message of an error body: Prometheus style {"error":..}, or the text.
function errorMessage(status, body, text) {
	if (body && typeof body === 'object' && body.error)
		return typeof body.error === 'string' ? body.error : JSON.stringify(body.error);
	return text ? text.slice(0, 300) : `HTTP ${status}`;
}

/*
 * fetch path (with a query object) and parse JSON. Resolves with the body
 * (null for 204) or rejects with ApiError(status, message, body); status 0
 * is a network error. opts: method, body (JSON-encoded when not a string),
 * token (defaults to the session's), raw (resolve with the Response).
 */
export async function api(path, opts = {}) {
	const { method = 'GET', query, body, raw = false, signal } = opts;
	const token = opts.token ?? session.token;
	let url = path;
	if (query) {
		const q = new URLSearchParams();
		for (const [k, v] of Object.entries(query)) {
			if (v === undefined || v === null) continue;
			for (const one of Array.isArray(v) ? v : [v]) q.append(k, String(one));
		}
		const s = q.toString();
		if (s) url += (url.includes('?') ? '&' : '?') + s;
	}
	const headers = { ...authHeaders(token) };
	let payload;
	if (body !== undefined) {
		payload = typeof body === 'string' ? body : JSON.stringify(body);
		headers['Content-Type'] = 'application/json';
	}
	let res;
	try {
		res = await fetch(url, { method, headers, body: payload, signal, cache: 'no-store' });
	} catch (e) {
		if (e.name === 'AbortError') throw e;
		throw new ApiError(0, `cannot reach the daemon (${e.message})`);
	}
	if (raw && res.ok) return res;
	const text = res.status === 204 ? '' : await res.text();
	let parsed = null;
	if (text) {
		try {
			parsed = JSON.parse(text);
		} catch {
			parsed = null;
		}
	}
	if (!res.ok) {
		const err = new ApiError(res.status, errorMessage(res.status, parsed, text), parsed);
		if (res.status === 401 && opts.token === undefined) onUnauthorized(err);
		throw err;
	}
	return parsed;
}

// Fetch a binary export and hand it to the browser as a download.
export async function download(path, filename) {
	const res = await api(path, { raw: true });
	const blob = await res.blob();
	const a = document.createElement('a');
	a.href = URL.createObjectURL(blob);
	a.download = filename;
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

export function wsUrl(path) {
	const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
	const token = session.token;
	const q = token ? `?access_token=${encodeURIComponent(token)}` : '';
	return `${proto}//${location.host}${path}${q}`;
}

// A stable key of a label set.
export function labelsKey(labels) {
	return Object.keys(labels || {})
		.sort()
		.map((k) => `${k}=${labels[k]}`)
		.join(',');
}

/*
 * Live: keeps a view's widgets fed while it is shown.
 *
 * Transports are tried in order until one delivers data: the dashboard's
 * WebSocket (/ws/dashboards/{id}, every widget's updates without asking),
 * the metrics WebSocket (/ws/metrics, one subscription per widget query),
 * then polling (the view's reload function every pollSeconds). One that
 * delivers nothing is not tried again for a minute, by any view. A WebSocket
 * that delivered data and then dropped is reopened with backoff (and the
 * view reloads once to fill the gap); after 3 failed reopens the feed polls.
 *
 * Messages (api/ws_proto.h, docs/websocket.md): {"type":"data","id":W,
 * "seq":N,"t":MS,"full":B,"set":[{"labels":{..},"v":X}],"del":[{..}]};
 * full replaces what is held for W, else set and del are the changes. seq
 * is the evaluation's unix second: the metrics feed resubscribes after a
 * drop with resume_from = the last seq, and the server replays the gap.
 *
 * cfg: dashboardId (or null), subs [{id, query}], pollSeconds, onData(id,
 * msg, first: the subscription's first, full message), reload() (a
 * promise), onState(transport) for 'connecting', 'ws',
 * 'ws-metrics', 'poll', 'paused'.
 */
// Transports that failed before delivering anything, until when not to retry them.
const broken = new Map();
const RETRY_BROKEN_MS = 60000;

export class Live {
	constructor(cfg) {
		this.cfg = cfg;
		this.transports = [];
		const usable = (t) => !(broken.get(t) > Date.now());
		if (cfg.dashboardId && usable('ws')) this.transports.push('ws');
		if (cfg.subs.length && usable('ws-metrics')) this.transports.push('ws-metrics');
		this.transports.push('poll');
		this.idx = 0;
		this.ws = null;
		this.timer = null;
		this.seq = new Map();
		this.seen = new Set(); // ids that had their first (full) message
		this.failures = 0;
		this.stopped = false;
		this.delivered = false;
	}

	start() {
		this.stopped = false;
		this.open();
	}

	stop() {
		this.stopped = true;
		clearTimeout(this.timer);
		clearInterval(this.timer);
		this.timer = null;
		if (this.ws) {
			this.ws.onclose = this.ws.onerror = this.ws.onmessage = null;
			this.ws.close(1000, 'view closed');
			this.ws = null;
		}
		this.cfg.onState('paused');
	}

	get transport() {
		return this.transports[this.idx];
	}

	next() {
		if (this.idx < this.transports.length - 1) this.idx++;
		this.failures = 0;
		this.delivered = false;
		this.open();
	}

	open() {
		if (this.stopped) return;
		const t = this.transport;
		if (t === 'poll') {
			this.cfg.onState('poll');
			const every = Math.max(1, this.cfg.pollSeconds) * 1000;
			this.timer = setInterval(() => {
				if (!document.hidden) this.cfg.reload().catch(() => {});
			}, every);
			return;
		}
		this.cfg.onState('connecting');
		const path = t === 'ws' ? `/ws/dashboards/${encodeURIComponent(this.cfg.dashboardId)}` : '/ws/metrics';
		let ws;
		try {
			ws = new WebSocket(wsUrl(path));
		} catch {
			this.next();
			return;
		}
		this.ws = ws;
		if (t !== 'ws-metrics') this.seq.clear(); // only the metrics feed resumes
		this.seen.clear();
		this.gotData = false;
		// not open within 5 s (a server without the route may never answer the
		// upgrade), or no data within 15 s of opening: the socket does not serve us
		this.timer = setTimeout(() => this.fail(), 5000);
		ws.onopen = () => {
			clearTimeout(this.timer);
			this.timer = setTimeout(() => {
				if (!this.gotData) this.fail();
			}, 15000);
			if (t === 'ws-metrics') {
				for (const s of this.cfg.subs) {
					const sub = { type: 'subscribe', id: String(s.id), query: s.query };
					// after a drop: the server replays what we missed, or says resync
					if (this.seq.has(sub.id)) sub.resume_from = this.seq.get(sub.id);
					ws.send(JSON.stringify(sub));
				}
			}
		};
		ws.onmessage = (ev) => {
			if (typeof ev.data !== 'string') return;
			let msg;
			try {
				msg = JSON.parse(ev.data);
			} catch {
				return;
			}
			this.onMessage(msg, t);
		};
		ws.onerror = () => {};
		ws.onclose = () => {
			if (this.ws === ws) this.fail();
		};
	}

	onMessage(msg, t) {
		if (msg.type === 'error' && msg.id !== undefined) {
			this.cfg.onData(String(msg.id), msg, false);
			return;
		}
		if (msg.type !== 'data' || msg.id === undefined) return; // resync: a full message follows
		const id = String(msg.id);
		if (!this.gotData) {
			this.gotData = this.delivered = true;
			this.failures = 0;
			clearTimeout(this.timer);
			this.cfg.onState(t);
		}
		if (typeof msg.seq === 'number') this.seq.set(id, msg.seq);
		// full: drop what is held for id; a server that does not say: its first message is
		const full = typeof msg.full === 'boolean' ? msg.full : !this.seen.has(id);
		this.seen.add(id);
		this.cfg.onData(id, msg, full);
	}

	// The socket closed or never delivered: reopen it, or move on to the next transport
	// when this one never delivered or failed 3 times in a row.
	fail() {
		clearTimeout(this.timer);
		if (this.ws) {
			this.ws.onclose = this.ws.onerror = this.ws.onmessage = null;
			try {
				this.ws.close();
			} catch {
				/* already closed */
			}
			this.ws = null;
		}
		if (this.stopped) return;
		if (!this.delivered || ++this.failures > 3) {
			if (!this.delivered) broken.set(this.transport, Date.now() + RETRY_BROKEN_MS);
			this.next();
			return;
		}
		this.cfg.onState('connecting');
		const delay = [1000, 2000, 5000][this.failures - 1] || 10000;
		this.timer = setTimeout(() => {
			// the dashboard feed starts over with full state: reload the history it missed
			if (this.transport === 'ws') this.cfg.reload().catch(() => {});
			this.open();
		}, delay);
	}
}
