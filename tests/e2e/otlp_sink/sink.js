// SPDX-License-Identifier: Apache-2.0
'use strict';
/*
 * An OTLP/HTTP protobuf sink for novamon's end-to-end tests: an independent
 * decoder, built on OpenTelemetry's own generated protobufjs definitions
 * (@opentelemetry/otlp-grpc-exporter-base's build/src/generated/root.js), not
 * on novamon's .proto subset.
 *
 *   node sink.js --port N [--host 127.0.0.1] [--state FILE]
 *
 * OTLP routes (POST, Content-Type application/x-protobuf, optional
 * Content-Encoding gzip):
 *   /v1/traces   ExportTraceServiceRequest   -> ExportTraceServiceResponse
 *   /v1/metrics  ExportMetricsServiceRequest -> ExportMetricsServiceResponse
 *   /v1/logs     ExportLogsServiceRequest    -> ExportLogsServiceResponse
 * A request that decodes answers 200 with the (empty, or partial-success when
 * so configured) response in protobuf; one that does not decode answers 400
 * with the error as text (and is recorded with that error); a wrong media type
 * or content encoding answers 415, another path 404, another method 405.
 *
 * Every request to a non-control path is recorded, whatever the answer: seq,
 * instance (pid and start time of this sink process), time (ms since the
 * epoch, when its headers arrived), path, headers, raw and decoded sizes,
 * sha256 of the raw body and of the decompressed body (the retry/duplicate
 * check uses the latter: a re-compressed retry is still the same request),
 * the status answered, whether the answer was handed to the kernel in full
 * ("done"), item counts, the decoded request as JSON (64-bit integers as
 * decimal strings, enums by name, trace/span ids as lowercase hex, other bytes
 * as base64), a decode error, and "problems": spec violations that a lenient
 * receiver would still accept (zero ids, end before start, histogram buckets
 * that do not add up, ...). Ids of the wrong length are a decode error, as in
 * the OpenTelemetry Collector.
 *
 * Control routes (same port):
 *   GET  /_health                 {"ok":true,"instance":...}
 *   GET  /_received[?path=P&since=SEQ]  {"instance":..., "mode":..., "requests":[...]}
 *   POST /_reset                  forget everything (and the state file), mode back to 200
 *   POST /_mode  {"status":503,"retry_after":"2","count":3}
 *        answer the next `count` OTLP requests with that status (and
 *        Retry-After when given); count -1 = until changed; {"status":200} or
 *        count 0 = normal again. Optional "partial_rejected": N and
 *        "partial_message": S make 200 answers carry a partial success.
 *
 * With --state FILE every record is appended to FILE as one JSON line (and a
 * {"done_seq":seq} line when its answer has been written), synchronously, before
 * anything is answered; a sink started again on the same FILE loads it and
 * continues the sequence, so a test can kill -9 the sink, restart it on the
 * same port, and still read everything it ever received. The mode is not
 * persisted: a restarted sink answers 200.
 *
 * Prints "otlp-sink listening on http://HOST:PORT" on stdout once listening.
 */
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const zlib = require('zlib');

const root = require('@opentelemetry/otlp-grpc-exporter-base/build/src/generated/root.js');

const otel = root.opentelemetry.proto;
const MAX_BODY = 64 << 20;

const SIGNALS = {
	'/v1/traces': {
		signal: 'traces',
		req: otel.collector.trace.v1.ExportTraceServiceRequest,
		resp: otel.collector.trace.v1.ExportTraceServiceResponse,
		rejectedField: 'rejectedSpans',
	},
	'/v1/metrics': {
		signal: 'metrics',
		req: otel.collector.metrics.v1.ExportMetricsServiceRequest,
		resp: otel.collector.metrics.v1.ExportMetricsServiceResponse,
		rejectedField: 'rejectedDataPoints',
	},
	'/v1/logs': {
		signal: 'logs',
		req: otel.collector.logs.v1.ExportLogsServiceRequest,
		resp: otel.collector.logs.v1.ExportLogsServiceResponse,
		rejectedField: 'rejectedLogRecords',
	},
};

const TO_OBJECT = {
	longs: String,
	enums: String,
	bytes: String,
	defaults: true,
	arrays: true,
	oneofs: true,
};

/* Fields that carry trace/span ids, and the byte length each must have (or 0). */
const ID_FIELDS = { traceId: 16, spanId: 8, parentSpanId: 8 };

function parseArgs(argv) {
	const opts = { host: '127.0.0.1', port: 0, state: null };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const next = () => {
			if (i + 1 >= argv.length)
				usage(`${a} needs a value`);
			return argv[++i];
		};
		if (a === '--port')
			opts.port = Number(next());
		else if (a === '--host')
			opts.host = next();
		else if (a === '--state')
			opts.state = next();
		else if (a === '-h' || a === '--help')
			usage(null);
		else
			usage(`unknown argument ${a}`);
	}
	if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535)
		usage('--port must be 0..65535');
	return opts;
}

function usage(err) {
	const text = 'usage: node sink.js --port N [--host 127.0.0.1] [--state FILE]\n';
	if (err) {
		process.stderr.write(`otlp-sink: ${err}\n${text}`);
		process.exit(2);
	}
	process.stdout.write(text);
	process.exit(0);
}

/*
 * Convert the decoded message to plain JSON, ids as hex. Throws on an id of
 * the wrong length (as the Collector's pdata does); pushes softer spec
 * violations to `problems`.
 */
function hexIds(obj, where, problems) {
	if (Array.isArray(obj)) {
		obj.forEach((v, i) => hexIds(v, `${where}[${i}]`, problems));
		return obj;
	}
	if (obj === null || typeof obj !== 'object')
		return obj;
	for (const k of Object.keys(obj)) {
		if (k in ID_FIELDS && typeof obj[k] === 'string') {
			const b = Buffer.from(obj[k], 'base64');
			if (b.length !== 0 && b.length !== ID_FIELDS[k])
				throw new Error(`${where}.${k}: ${b.length} bytes, must be ${ID_FIELDS[k]} or empty`);
			obj[k] = b.toString('hex');
		} else {
			hexIds(obj[k], `${where}.${k}`, problems);
		}
	}
	return obj;
}

const isZeroHex = (h) => /^0+$/.test(h);
const big = (s) => BigInt(s || '0');

function checkTraces(req, problems) {
	let n = 0;
	req.resourceSpans.forEach((rs, i) => rs.scopeSpans.forEach((ss, j) => ss.spans.forEach((sp, k) => {
		const w = `resourceSpans[${i}].scopeSpans[${j}].spans[${k}]`;
		n++;
		if (sp.traceId === '' || isZeroHex(sp.traceId))
			problems.push(`${w}: invalid (empty or zero) traceId`);
		if (sp.spanId === '' || isZeroHex(sp.spanId))
			problems.push(`${w}: invalid (empty or zero) spanId`);
		if (sp.parentSpanId !== '' && isZeroHex(sp.parentSpanId))
			problems.push(`${w}: parentSpanId is all zero (a root span has it empty)`);
		if (sp.name === '')
			problems.push(`${w}: empty name`);
		if (big(sp.startTimeUnixNano) === 0n || big(sp.endTimeUnixNano) === 0n)
			problems.push(`${w}: zero start or end time`);
		if (big(sp.endTimeUnixNano) < big(sp.startTimeUnixNano))
			problems.push(`${w}: ends before it starts`);
	})));
	return { spans: n };
}

function checkHistogramPoint(dp, w, problems) {
	const nb = dp.explicitBounds.length;
	if (dp.bucketCounts.length !== 0 && dp.bucketCounts.length !== nb + 1)
		problems.push(`${w}: ${dp.bucketCounts.length} bucket counts for ${nb} bounds`);
	for (let b = 1; b < nb; b++) {
		if (!(dp.explicitBounds[b] > dp.explicitBounds[b - 1]))
			problems.push(`${w}: explicitBounds not strictly increasing at ${b}`);
	}
	const total = dp.bucketCounts.reduce((a, c) => a + big(c), 0n);
	if (dp.bucketCounts.length && total !== big(dp.count))
		problems.push(`${w}: bucket counts add up to ${total}, count is ${dp.count}`);
}

function checkMetrics(req, problems) {
	let metrics = 0, points = 0;
	req.resourceMetrics.forEach((rm, i) => rm.scopeMetrics.forEach((sm, j) => sm.metrics.forEach((m, k) => {
		const w = `resourceMetrics[${i}].scopeMetrics[${j}].metrics[${k}] (${m.name})`;
		metrics++;
		if (!m.name)
			problems.push(`${w}: empty name`);
		if (!m.data) {
			problems.push(`${w}: no data (gauge/sum/histogram/...)`);
			return;
		}
		const d = m[m.data];
		const dps = d.dataPoints || [];
		points += dps.length;
		if ((m.data === 'sum' || m.data === 'histogram' || m.data === 'exponentialHistogram') &&
		    d.aggregationTemporality === 'AGGREGATION_TEMPORALITY_UNSPECIFIED')
			problems.push(`${w}: aggregationTemporality unspecified`);
		dps.forEach((dp, p) => {
			const wp = `${w}.${m.data}.dataPoints[${p}]`;
			if (big(dp.timeUnixNano) === 0n)
				problems.push(`${wp}: zero timeUnixNano`);
			if ((m.data === 'gauge' || m.data === 'sum') && !dp.value)
				problems.push(`${wp}: no value (asDouble/asInt)`);
			if (m.data === 'histogram')
				checkHistogramPoint(dp, wp, problems);
		});
	})));
	return { metrics, data_points: points };
}

function checkLogs(req, problems) {
	let n = 0;
	req.resourceLogs.forEach((rl, i) => rl.scopeLogs.forEach((sl, j) => sl.logRecords.forEach((lr, k) => {
		const w = `resourceLogs[${i}].scopeLogs[${j}].logRecords[${k}]`;
		n++;
		if (lr.spanId !== '' && lr.traceId === '')
			problems.push(`${w}: spanId without traceId`);
		if ((lr.traceId !== '' && isZeroHex(lr.traceId)) || (lr.spanId !== '' && isZeroHex(lr.spanId)))
			problems.push(`${w}: all-zero trace or span id (leave it empty instead)`);
		if (big(lr.timeUnixNano) === 0n && big(lr.observedTimeUnixNano) === 0n)
			problems.push(`${w}: neither timeUnixNano nor observedTimeUnixNano set`);
	})));
	return { log_records: n };
}

const CHECKS = { traces: checkTraces, metrics: checkMetrics, logs: checkLogs };

/* Decode one request body (already decompressed). Throws on a decode error. */
function decode(route, body) {
	const msg = route.req.decode(body);
	const err = route.req.verify(msg);
	if (err)
		throw new Error(`verify: ${err}`);
	const problems = [];
	const json = hexIds(route.req.toObject(msg, TO_OBJECT), route.signal, problems);
	const items = CHECKS[route.signal](json, problems);
	return { json, problems, items };
}

class State {
	constructor(file) {
		this.file = file;
		this.requests = [];
		this.bySeq = new Map();
		this.seq = 0;
		if (file && fs.existsSync(file))
			this.load();
	}

	load() {
		const lines = fs.readFileSync(this.file, 'utf8').split('\n');
		for (const line of lines) {
			if (!line)
				continue;
			let rec;
			try {
				rec = JSON.parse(line);
			} catch (e) {
				continue; /* a line torn by kill -9 while it was written */
			}
			if (rec.done_seq !== undefined) {
				const r = this.bySeq.get(rec.done_seq);
				if (r) {
					r.done = true;
					r.done_time = rec.time;
				}
				continue;
			}
			this.requests.push(rec);
			this.bySeq.set(rec.seq, rec);
			this.seq = Math.max(this.seq, rec.seq);
		}
	}

	append(line) {
		if (this.file)
			fs.appendFileSync(this.file, JSON.stringify(line) + '\n');
	}

	add(rec) {
		rec.seq = ++this.seq;
		this.requests.push(rec);
		this.bySeq.set(rec.seq, rec);
		this.append(rec);
	}

	markDone(rec) {
		rec.done = true;
		rec.done_time = Date.now();
		this.append({ done_seq: rec.seq, time: rec.done_time });
	}

	reset() {
		this.requests = [];
		this.bySeq.clear();
		if (this.file)
			fs.writeFileSync(this.file, '');
	}
}

const INSTANCE = { pid: process.pid, started: Date.now() };

function main() {
	const opts = parseArgs(process.argv.slice(2));
	const state = new State(opts.state);
	let mode = { status: 200, count: 0 };

	function currentFault() {
		if (mode.status === 200 || mode.count === 0)
			return null;
		const f = { status: mode.status, retry_after: mode.retry_after };
		if (mode.count > 0)
			mode.count--;
		return f;
	}

	function sendJson(res, status, obj) {
		const body = Buffer.from(JSON.stringify(obj));
		res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
		res.end(body);
	}

	function sendText(res, status, text, extra) {
		const body = Buffer.from(text + '\n');
		res.writeHead(status, Object.assign({
			'Content-Type': 'text/plain; charset=utf-8',
			'Content-Length': body.length,
		}, extra || {}));
		res.end(body);
	}

	function control(req, res, url, body) {
		if (req.method === 'GET' && url.pathname === '/_health')
			return sendJson(res, 200, { ok: true, instance: INSTANCE });
		if (req.method === 'GET' && url.pathname === '/_received') {
			const p = url.searchParams.get('path');
			const since = Number(url.searchParams.get('since') || 0);
			const reqs = state.requests.filter((r) => (!p || r.path === p) && r.seq > since);
			return sendJson(res, 200, { instance: INSTANCE, mode, requests: reqs });
		}
		if (req.method === 'POST' && url.pathname === '/_reset') {
			state.reset();
			mode = { status: 200, count: 0 };
			return sendJson(res, 200, { ok: true });
		}
		if (req.method === 'POST' && url.pathname === '/_mode') {
			let m;
			try {
				m = JSON.parse(body.toString('utf8') || '{}');
			} catch (e) {
				return sendText(res, 400, `bad JSON: ${e.message}`);
			}
			const status = m.status === undefined ? 200 : Number(m.status);
			if (!Number.isInteger(status) || status < 200 || status > 599)
				return sendText(res, 400, 'status must be an HTTP status code');
			const count = m.count === undefined ? -1 : Number(m.count);
			if (!Number.isInteger(count) || count < -1)
				return sendText(res, 400, 'count must be an integer >= -1');
			mode = {
				status,
				count,
				retry_after: m.retry_after === undefined ? undefined : String(m.retry_after),
				partial_rejected: m.partial_rejected === undefined ? 0 : Number(m.partial_rejected),
				partial_message: m.partial_message === undefined ? '' : String(m.partial_message),
			};
			return sendJson(res, 200, { ok: true, mode });
		}
		return sendText(res, 404, `no control route ${req.method} ${url.pathname}`);
	}

	function otlp(req, res, url, raw, tooLarge) {
		const rec = {
			instance: INSTANCE,
			time: req._sinkTime,
			method: req.method,
			path: url.pathname,
			headers: req.headers,
			raw_bytes: raw.length,
			raw_sha256: crypto.createHash('sha256').update(raw).digest('hex'),
			body_bytes: null,
			body_sha256: null,
			signal: null,
			status: null,
			retry_after: null,
			done: false,
			items: null,
			error: null,
			problems: [],
			decoded: null,
		};
		const answer = (status, text, extra) => {
			rec.status = status;
			state.add(rec);
			res.on('finish', () => state.markDone(rec));
			if (Buffer.isBuffer(text)) {
				res.writeHead(status, Object.assign({
					'Content-Type': 'application/x-protobuf',
					'Content-Length': text.length,
				}, extra || {}));
				res.end(text);
			} else {
				sendText(res, status, text, extra);
			}
		};

		const route = SIGNALS[url.pathname];
		if (!route) {
			rec.error = `unknown path ${url.pathname}`;
			return answer(404, rec.error);
		}
		rec.signal = route.signal;
		if (req.method !== 'POST') {
			rec.error = `method ${req.method} not allowed`;
			return answer(405, rec.error, { Allow: 'POST' });
		}
		if (tooLarge) {
			rec.error = `body larger than ${MAX_BODY} bytes`;
			return answer(413, rec.error);
		}
		const ctype = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
		if (ctype !== 'application/x-protobuf') {
			rec.error = `Content-Type ${JSON.stringify(req.headers['content-type'] || '')}, ` +
				'expected application/x-protobuf';
			return answer(415, rec.error);
		}
		const enc = (req.headers['content-encoding'] || 'identity').trim().toLowerCase();
		let body;
		try {
			if (enc === 'gzip')
				body = zlib.gunzipSync(raw, { maxOutputLength: MAX_BODY });
			else if (enc === 'identity')
				body = raw;
			else {
				rec.error = `unsupported Content-Encoding ${enc}`;
				return answer(415, rec.error);
			}
		} catch (e) {
			rec.error = `gzip: ${e.message}`;
			return answer(400, rec.error);
		}
		rec.body_bytes = body.length;
		rec.body_sha256 = crypto.createHash('sha256').update(body).digest('hex');
		try {
			const d = decode(route, body);
			rec.decoded = d.json;
			rec.problems = d.problems;
			rec.items = d.items;
		} catch (e) {
			rec.error = `decode ${route.req.name || route.signal}: ${e.message}`;
			return answer(400, rec.error);
		}

		const fault = currentFault();
		if (fault) {
			rec.retry_after = fault.retry_after === undefined ? null : fault.retry_after;
			const extra = fault.retry_after === undefined ? {} : { 'Retry-After': fault.retry_after };
			return answer(fault.status, 'fault injected by the test sink', extra);
		}
		const resp = {};
		if (mode.partial_rejected) {
			resp.partialSuccess = { errorMessage: mode.partial_message };
			resp.partialSuccess[route.rejectedField] = mode.partial_rejected;
		}
		return answer(200, Buffer.from(route.resp.encode(route.resp.create(resp)).finish()));
	}

	const server = http.createServer((req, res) => {
		req._sinkTime = Date.now();
		const chunks = [];
		let size = 0;
		let tooLarge = false;
		req.on('data', (c) => {
			size += c.length;
			if (size > MAX_BODY)
				tooLarge = true;
			else
				chunks.push(c);
		});
		req.on('end', () => {
			const raw = Buffer.concat(chunks);
			const url = new URL(req.url, 'http://sink');
			try {
				if (url.pathname.startsWith('/_'))
					control(req, res, url, raw);
				else
					otlp(req, res, url, raw, tooLarge);
			} catch (e) {
				process.stderr.write(`otlp-sink: internal error: ${e.stack}\n`);
				if (!res.headersSent)
					sendText(res, 500, `internal error: ${e.message}`);
			}
		});
	});
	server.keepAliveTimeout = 30000;
	server.on('clientError', (err, socket) => {
		if (socket.writable)
			socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
	});
	server.listen(opts.port, opts.host, () => {
		const a = server.address();
		process.stdout.write(`otlp-sink listening on http://${a.address}:${a.port}\n`);
	});
	const stop = () => server.close(() => process.exit(0)) && server.closeAllConnections();
	process.on('SIGTERM', stop);
	process.on('SIGINT', stop);
}

if (require.main === module)
	main();

module.exports = { SIGNALS, otel, root };
