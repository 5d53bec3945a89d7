// SPDX-License-Identifier: Apache-2.0
'use strict';
/*
 * Self-test of sink.js: encodes OTLP requests with the same generated
 * definitions (OpenTelemetry's root.js), posts them plain and gzipped to a
 * sink started as a child process, and checks what the sink decoded and
 * recorded, its answers (protobuf responses, 503 + Retry-After, partial
 * success, 400/404/405/415), its spec checks, and that a sink killed with
 * SIGKILL and started again on the same port and state file still has
 * everything.
 *
 *   node selftest.js        (exit 0: all checks passed)
 */
const assert = require('assert');
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const zlib = require('zlib');

const { otel } = require('./sink.js');

const TraceReq = otel.collector.trace.v1.ExportTraceServiceRequest;
const TraceResp = otel.collector.trace.v1.ExportTraceServiceResponse;
const MetricsReq = otel.collector.metrics.v1.ExportMetricsServiceRequest;
const MetricsResp = otel.collector.metrics.v1.ExportMetricsServiceResponse;
const LogsReq = otel.collector.logs.v1.ExportLogsServiceRequest;
const LogsResp = otel.collector.logs.v1.ExportLogsServiceResponse;

const TRACE_ID = '5b8efff798038103d269b633813fc60c';
const ROOT_ID = 'eee19b7ec3c1b174';
const CHILD_ID = 'eee19b7ec3c1b173';
/* Beyond 2^53: a decoder that goes through doubles would lose the last digits. */
const T0 = '1700000000123456789';
const T1 = '1700000000123500000';

let checks = 0;
function check(cond, what) {
	assert.ok(cond, what);
	checks++;
}
function eq(a, b, what) {
	assert.deepStrictEqual(a, b, what);
	checks++;
}

function freePort() {
	return new Promise((resolve, reject) => {
		const s = net.createServer();
		s.on('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const p = s.address().port;
			s.close(() => resolve(p));
		});
	});
}

function startSink(port, stateFile) {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, [path.join(__dirname, 'sink.js'), '--port', String(port),
			'--state', stateFile], { stdio: ['ignore', 'pipe', 'inherit'] });
		let out = '';
		child.stdout.on('data', (d) => {
			out += d;
			if (out.includes('listening on'))
				resolve(child);
		});
		child.on('exit', (code, sig) => reject(new Error(`sink exited (${code}, ${sig}) before listening: ${out}`)));
	});
}

function kill9(child) {
	return new Promise((resolve) => {
		child.removeAllListeners('exit');
		child.on('exit', () => resolve());
		child.kill('SIGKILL');
	});
}

const kv = (key, v) => {
	if (typeof v === 'string')
		return { key, value: { stringValue: v } };
	if (typeof v === 'boolean')
		return { key, value: { boolValue: v } };
	if (Number.isInteger(v))
		return { key, value: { intValue: v } };
	return { key, value: { doubleValue: v } };
};
const hex = (h) => Buffer.from(h, 'hex');
const RESOURCE = { attributes: [kv('service.name', 'novamon'), kv('host.name', 'selftest-host')] };
const SCOPE = { name: 'novamon', version: 'selftest' };

function traceRequest() {
	const spans = [{
		traceId: hex(TRACE_ID), spanId: hex(ROOT_ID), name: 'vm activity', kind: 1,
		startTimeUnixNano: T0, endTimeUnixNano: T1,
		attributes: [kv('novamon.vm', 'pid-42')],
	}, {
		traceId: hex(TRACE_ID), spanId: hex(CHILD_ID), parentSpanId: hex(ROOT_ID), name: 'block read',
		kind: 1, startTimeUnixNano: T0, endTimeUnixNano: T1,
		attributes: [kv('system.device', 'loop3'), kv('disk.io.direction', 'read'),
			kv('novamon.block.sector', 8), kv('novamon.block.bytes', 4096),
			kv('novamon.sample_rate', 0.25), kv('novamon.vm', 'pid-42'), kv('novamon.slow', true)],
		status: { code: 2, message: 'I/O error' },
	}];
	return TraceReq.fromObject({ resourceSpans: [{ resource: RESOURCE, scopeSpans: [{ scope: SCOPE, spans }] }] });
}

function metricsRequest() {
	const attrs = [kv('device', 'loop3'), kv('op', 'read')];
	const metrics = [{
		name: 'novamon_otlp_queue_bytes', unit: 'By',
		gauge: { dataPoints: [{ timeUnixNano: T1, asDouble: 1.5, attributes: [kv('signal', 'traces')] }] },
	}, {
		name: 'novamon_block_requests_total', unit: '1',
		sum: {
			aggregationTemporality: 2, isMonotonic: true,
			dataPoints: [{ startTimeUnixNano: T0, timeUnixNano: T1, asInt: '9007199254740993', attributes: attrs }],
		},
	}, {
		name: 'novamon_block_request_duration_seconds', unit: 's',
		histogram: {
			aggregationTemporality: 2,
			dataPoints: [{
				startTimeUnixNano: T0, timeUnixNano: T1, count: 7, sum: 0.0125,
				explicitBounds: [0.0001, 0.001, 0.01], bucketCounts: [1, 2, 3, 1], attributes: attrs,
			}],
		},
	}];
	return MetricsReq.fromObject({ resourceMetrics: [{ resource: RESOURCE, scopeMetrics: [{ scope: SCOPE, metrics }] }] });
}

function logsRequest() {
	const logRecords = [{
		timeUnixNano: T0, observedTimeUnixNano: T1, severityNumber: 9, severityText: 'INFO',
		body: { stringValue: 'block probes attached' },
		attributes: [kv('novamon.event', 'capture.attach'), kv('novamon.probe', 'block')],
		traceId: hex(TRACE_ID), spanId: hex(CHILD_ID),
	}];
	return LogsReq.fromObject({ resourceLogs: [{ resource: RESOURCE, scopeLogs: [{ scope: SCOPE, logRecords }] }] });
}

async function post(base, p, body, { gzip = false, ctype = 'application/x-protobuf', method = 'POST', headers = {} } = {}) {
	const h = Object.assign({ 'Content-Type': ctype }, headers);
	let data = body;
	if (gzip) {
		data = zlib.gzipSync(body);
		h['Content-Encoding'] = 'gzip';
	}
	const r = await fetch(base + p, { method, headers: h, body: method === 'GET' ? undefined : data });
	const buf = Buffer.from(await r.arrayBuffer());
	return { status: r.status, headers: r.headers, body: buf };
}

async function control(base, p, obj) {
	const r = await fetch(base + p, {
		method: obj === undefined ? 'GET' : 'POST',
		headers: { 'Content-Type': 'application/json' },
		body: obj === undefined ? undefined : JSON.stringify(obj),
	});
	const text = await r.text();
	eq(r.status, 200, `${p}: ${text}`);
	return JSON.parse(text);
}

async function received(base, q = '') {
	return (await control(base, '/_received' + q)).requests;
}

const attrMap = (attrs) => Object.fromEntries(attrs.map((a) => [a.key, a.value[a.value.value]]));

async function main() {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otlp-sink-selftest-'));
	const stateFile = path.join(dir, 'state.jsonl');
	const port = await freePort();
	const base = `http://127.0.0.1:${port}`;
	let sink = await startSink(port, stateFile);
	try {
		await run(base, stateFile, async () => {
			await kill9(sink);
			let refused = false;
			try {
				await fetch(base + '/_health');
			} catch (e) {
				refused = true;
			}
			check(refused, 'a killed sink is gone (connection refused)');
			sink = await startSink(port, stateFile);
		});
	} finally {
		await kill9(sink);
		fs.rmSync(dir, { recursive: true, force: true });
	}
	console.log(`PASS: otlp sink selftest, ${checks} checks`);
}

async function run(base, stateFile, restart) {
	/* Traces, plain and gzipped: same decoded body, different raw bodies. */
	const tbody = Buffer.from(TraceReq.encode(traceRequest()).finish());
	for (const gzip of [false, true]) {
		const r = await post(base, '/v1/traces', tbody, { gzip, headers: { 'X-Api-Key': 'k1' } });
		eq(r.status, 200, 'traces answered 200');
		eq(r.headers.get('content-type'), 'application/x-protobuf', 'protobuf response');
		const resp = TraceResp.decode(r.body);
		check(!resp.partialSuccess, 'no partial success by default');
	}
	let recs = await received(base, '?path=/v1/traces');
	eq(recs.length, 2, 'two trace requests recorded');
	eq(recs[0].body_sha256, recs[1].body_sha256, 'same decoded body hash plain and gzip');
	check(recs[0].raw_sha256 !== recs[1].raw_sha256, 'raw hashes differ plain vs gzip');
	eq(recs[1].headers['content-encoding'], 'gzip', 'content-encoding recorded');
	eq(recs[1].headers['x-api-key'], 'k1', 'custom header recorded');
	for (const rec of recs) {
		eq(rec.error, null, 'no decode error');
		eq(rec.problems, [], 'no spec problems');
		eq(rec.items, { spans: 2 }, 'span count');
		eq(rec.status, 200, 'status recorded');
		eq(rec.done, true, 'answer written');
		const rs = rec.decoded.resourceSpans[0];
		eq(attrMap(rs.resource.attributes), { 'service.name': 'novamon', 'host.name': 'selftest-host' }, 'resource');
		eq(rs.scopeSpans[0].scope.name, 'novamon', 'scope');
		const [root, child] = rs.scopeSpans[0].spans;
		eq([root.traceId, root.spanId, root.parentSpanId], [TRACE_ID, ROOT_ID, ''], 'root ids as hex');
		eq([child.traceId, child.spanId, child.parentSpanId], [TRACE_ID, CHILD_ID, ROOT_ID], 'child ids as hex');
		eq(child.name, 'block read', 'name');
		eq(child.kind, 'SPAN_KIND_INTERNAL', 'kind');
		eq([child.startTimeUnixNano, child.endTimeUnixNano], [T0, T1], 'exact 64-bit times');
		eq(child.status, { code: 'STATUS_CODE_ERROR', message: 'I/O error' }, 'status');
		eq(root.status, null, 'unset status');
		eq(attrMap(child.attributes), {
			'system.device': 'loop3', 'disk.io.direction': 'read', 'novamon.block.sector': '8',
			'novamon.block.bytes': '4096', 'novamon.sample_rate': 0.25, 'novamon.vm': 'pid-42',
			'novamon.slow': true,
		}, 'typed attributes (int64 as decimal strings)');
	}

	/* Metrics: gauge, sum, histogram. */
	const mbody = Buffer.from(MetricsReq.encode(metricsRequest()).finish());
	let r = await post(base, '/v1/metrics', mbody, { gzip: true });
	eq(r.status, 200, 'metrics answered 200');
	MetricsResp.decode(r.body);
	recs = await received(base, '?path=/v1/metrics');
	eq(recs.length, 1, 'one metrics request');
	eq(recs[0].problems, [], 'no metric problems');
	eq(recs[0].items, { metrics: 3, data_points: 3 }, 'metric item counts');
	const ms = recs[0].decoded.resourceMetrics[0].scopeMetrics[0].metrics;
	eq(ms.map((m) => [m.name, m.data]), [['novamon_otlp_queue_bytes', 'gauge'],
		['novamon_block_requests_total', 'sum'], ['novamon_block_request_duration_seconds', 'histogram']], 'metric kinds');
	eq(ms[0].gauge.dataPoints[0].asDouble, 1.5, 'gauge value');
	eq(ms[1].sum.aggregationTemporality, 'AGGREGATION_TEMPORALITY_CUMULATIVE', 'cumulative');
	eq(ms[1].sum.isMonotonic, true, 'monotonic');
	eq(ms[1].sum.dataPoints[0].asInt, '9007199254740993', 'int64 value exact beyond 2^53');
	eq(ms[1].sum.dataPoints[0].value, 'asInt', 'oneof value name');
	eq(attrMap(ms[1].sum.dataPoints[0].attributes), { device: 'loop3', op: 'read' }, 'point attributes');
	const hp = ms[2].histogram.dataPoints[0];
	eq([hp.count, hp.sum, hp.explicitBounds, hp.bucketCounts], ['7', 0.0125, [0.0001, 0.001, 0.01], ['1', '2', '3', '1']], 'histogram');

	/* Logs with trace correlation. */
	const lbody = Buffer.from(LogsReq.encode(logsRequest()).finish());
	r = await post(base, '/v1/logs', lbody);
	eq(r.status, 200, 'logs answered 200');
	LogsResp.decode(r.body);
	recs = await received(base, '?path=/v1/logs');
	eq(recs[0].items, { log_records: 1 }, 'log count');
	const lr = recs[0].decoded.resourceLogs[0].scopeLogs[0].logRecords[0];
	eq([lr.traceId, lr.spanId], [TRACE_ID, CHILD_ID], 'log ids as hex');
	eq(lr.severityNumber, 'SEVERITY_NUMBER_INFO', 'severity');
	eq(lr.body, { stringValue: 'block probes attached', value: 'stringValue' }, 'body');
	eq(attrMap(lr.attributes)['novamon.event'], 'capture.attach', 'event attribute');

	/* Fault mode: 503 + Retry-After for 2 requests, then 200 again. */
	await control(base, '/_mode', { status: 503, retry_after: '2', count: 2 });
	const statuses = [];
	for (let i = 0; i < 3; i++) {
		r = await post(base, '/v1/traces', tbody, { gzip: true });
		statuses.push([r.status, r.headers.get('retry-after')]);
	}
	eq(statuses, [[503, '2'], [503, '2'], [200, null]], '503 x2 with Retry-After, then 200');
	recs = await received(base, '?path=/v1/traces');
	eq(recs.slice(-3).map((x) => [x.status, x.retry_after]), [[503, '2'], [503, '2'], [200, null]], 'fault answers recorded');
	check(recs.slice(-3).every((x) => x.decoded && x.items.spans === 2), 'refused requests still decoded');

	await control(base, '/_mode', { status: 429, count: -1 });
	for (let i = 0; i < 3; i++)
		eq((await post(base, '/v1/logs', lbody)).status, 429, 'count -1 holds');
	await control(base, '/_mode', { status: 200 });
	eq((await post(base, '/v1/logs', lbody)).status, 200, 'back to 200');

	/* Partial success. */
	await control(base, '/_mode', { status: 200, partial_rejected: 3, partial_message: 'too old' });
	r = await post(base, '/v1/traces', tbody);
	const pr = TraceResp.toObject(TraceResp.decode(r.body), { longs: String });
	eq(pr.partialSuccess, { rejectedSpans: '3', errorMessage: 'too old' }, 'partial success response');
	await control(base, '/_mode', { status: 200 });

	/* Rejections: each answered with the right status and recorded with its error. */
	const since = (await received(base)).slice(-1)[0].seq;
	const badId = TraceReq.encode(TraceReq.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: [{
		traceId: hex('01020304'), spanId: hex(ROOT_ID), name: 'x', startTimeUnixNano: T0, endTimeUnixNano: T1,
	}] }] }] })).finish();
	const cases = [
		['/v1/traces', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]), {}, 400, /decode/],
		['/v1/traces', Buffer.from('not gzip'), { headers: { 'Content-Encoding': 'gzip' } }, 400, /gzip/],
		['/v1/traces', Buffer.from(badId), {}, 400, /traceId: 4 bytes/],
		['/v1/traces', tbody, { ctype: 'application/json' }, 415, /Content-Type/],
		['/v1/traces', tbody, { headers: { 'Content-Encoding': 'br' } }, 415, /Content-Encoding/],
		['/v1/traces', tbody, { method: 'GET' }, 405, /method/],
		['/v1/profiles', tbody, {}, 404, /unknown path/],
	];
	for (const [p, body, o, want] of cases) {
		r = await post(base, p, body, o);
		eq(r.status, want, `${p} ${JSON.stringify(o)} answered ${want}: ${r.body}`);
	}
	recs = await received(base, `?since=${since}`);
	eq(recs.length, cases.length, 'every rejected request recorded');
	cases.forEach(([, , , want, re], i) => {
		eq(recs[i].status, want, 'recorded status');
		check(re.test(recs[i].error), `recorded error ${recs[i].error} matches ${re}`);
	});

	/* Spec problems a lenient receiver accepts but the test must see. */
	const odd = TraceReq.encode(TraceReq.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: [{
		traceId: hex(TRACE_ID), spanId: hex('0000000000000000'), name: 'odd', startTimeUnixNano: T1, endTimeUnixNano: T0,
	}] }] }] })).finish();
	eq((await post(base, '/v1/traces', Buffer.from(odd))).status, 200, 'odd span accepted');
	const oddRec = (await received(base)).slice(-1)[0];
	check(oddRec.problems.some((p) => /spanId/.test(p)) && oddRec.problems.some((p) => /ends before/.test(p)),
		`problems reported: ${JSON.stringify(oddRec.problems)}`);
	const badHist = MetricsReq.fromObject(metricsRequest().toJSON());
	badHist.resourceMetrics[0].scopeMetrics[0].metrics[2].histogram.dataPoints[0].bucketCounts = [1, 1];
	eq((await post(base, '/v1/metrics', Buffer.from(MetricsReq.encode(badHist).finish()))).status, 200, 'bad histogram accepted');
	const hr = (await received(base)).slice(-1)[0];
	check(hr.problems.some((p) => /bucket counts/.test(p)), `histogram problems: ${JSON.stringify(hr.problems)}`);

	/* kill -9 and restart on the same port and state: nothing forgotten, seq continues. */
	const before = await received(base);
	const inst1 = (await control(base, '/_health')).instance;
	await restart();
	const after = await received(base);
	const inst2 = (await control(base, '/_health')).instance;
	check(inst1.pid !== inst2.pid, 'a new sink process');
	eq(after, before, 'all records survive kill -9 and restart');
	eq((await post(base, '/v1/traces', tbody, { gzip: true })).status, 200, 'restarted sink answers');
	const last = (await received(base)).slice(-1)[0];
	eq(last.seq, before.slice(-1)[0].seq + 1, 'sequence continues');
	eq(last.instance.pid, inst2.pid, 'record carries the new instance');

	/* Reset. */
	await control(base, '/_reset', {});
	eq((await received(base)).length, 0, 'reset empties the record');
	eq(fs.readFileSync(stateFile, 'utf8'), '', 'reset empties the state file');
}

main().catch((e) => {
	console.error(`FAIL: ${e.stack || e}`);
	process.exit(1);
});
