// SPDX-License-Identifier: Apache-2.0
//
// The web UI's DOM-free parts under node's test runner (no browser):
// PromQL restriction for drill-down, drilldown substitution, value and time
// formatting. Run by tests/e2e/test_webui.py before the browser test, or
// by hand: node --test tests/e2e/webui/unit.test.mjs
import assert from 'node:assert/strict';
import test from 'node:test';

import { fmt, thresholdColor, timeLabel } from '../../../api/web/src/charts.js';
import { promString, restrictQuery, substitute } from '../../../api/web/src/promql.js';

test('restrictQuery adds the matchers to every selector', () => {
	const cases = [
		['sum by (device, op) (rate(novamon_block_bytes_total[1m]))',
			'sum by (device, op) (rate(novamon_block_bytes_total{vm="x"}[1m]))'],
		['topk(20, sum by (vm) (rate(novamon_kvm_exits_total[5m])))',
			'topk(20, sum by (vm) (rate(novamon_kvm_exits_total{vm="x"}[5m])))'],
		['1 - avg by (vm) (rate(novamon_kvm_halted_seconds_total[1m]))',
			'1 - avg by (vm) (rate(novamon_kvm_halted_seconds_total{vm="x"}[1m]))'],
		['a{b="c"} / on (vm) group_left () d', 'a{vm="x",b="c"} / on (vm) group_left () d{vm="x"}'],
		['{__name__=~"novamon_.+"}', '{vm="x",__name__=~"novamon_.+"}'],
		['sum(rate(x[1m])) or vector(0)', 'sum(rate(x{vm="x"}[1m])) or vector(0)'],
		['histogram_quantile(0.99, sum by (le, op) (rate(b_bucket[5m])))',
			'histogram_quantile(0.99, sum by (le, op) (rate(b_bucket{vm="x"}[5m])))'],
		['x offset 5m', 'x{vm="x"} offset 5m'],
		['(novamon_probe_attached == 0)', '(novamon_probe_attached{vm="x"} == 0)'],
		['sum without (cpu) (m)', 'sum without (cpu) (m{vm="x"})'],
		['label_replace(m, "a", "$1", "b", "(.*)")', 'label_replace(m{vm="x"}, "a", "$1", "b", "(.*)")'],
	];
	for (const [q, want] of cases) assert.equal(restrictQuery(q, { vm: 'x' }), want, q);
});

test('restrictQuery keeps a matcher the query already has, and escapes values', () => {
	assert.equal(restrictQuery('a{vm="y"}', { vm: 'x' }), 'a{vm="y"}');
	assert.equal(restrictQuery('a{vm=~"y.*"}', { vm: 'x', vcpu: '1' }), 'a{vcpu="1",vm=~"y.*"}');
	assert.equal(restrictQuery('a', { vm: 'q"\\' }), 'a{vm="q\\"\\\\"}');
	assert.equal(promString('a"b'), '"a\\"b"');
});

test('substitute fills $vm and $vcpu inside strings', () => {
	assert.equal(substitute('rate(m{vm="$vm",vcpu="$vcpu"}[1m])', { vm: 'web"1', vcpu: '0' }),
		'rate(m{vm="web\\"1",vcpu="0"}[1m])');
	assert.equal(substitute('m{vm="$vm"} $vcpux', { vm: 'a' }), 'm{vm="a"} $vcpux');
});

test('fmt prints units', () => {
	assert.equal(fmt(0.734, 'percentunit'), '73.4%');
	assert.equal(fmt(3.2 * 2 ** 20, 'bytes/s'), '3.20 MiB/s');
	assert.equal(fmt(512, 'bytes'), '512 B');
	assert.equal(fmt(0.0021, 'seconds'), '2.10 ms');
	assert.equal(fmt(12000, 'exits/s'), '12.0k exits/s');
	assert.equal(fmt(3, ''), '3');
	assert.equal(fmt(3, '', 2), '3.00');
	assert.equal(fmt(2.5, 'exits/s'), '2.50 exits/s');
	assert.equal(fmt(NaN, 'x'), '–');
	assert.equal(fmt(Infinity), '+Inf');
	assert.equal(fmt(1.23456, '', 3), '1.235');
});

test('thresholds pick the last step at or below the value', () => {
	const th = [{ value: 0, color: 'green' }, { value: 0.7, color: 'orange' }, { value: 0.9, color: 'red' }];
	assert.equal(thresholdColor(0.5, th), '#56c288');
	assert.equal(thresholdColor(0.7, th), '#f2a93b');
	assert.equal(thresholdColor(0.95, th), '#e5646e');
});

test('time labels follow the window', () => {
	const t = new Date(2026, 10, 24, 9, 5, 7).getTime() / 1000;
	assert.equal(timeLabel(t, 300), '09:05:07');
	assert.equal(timeLabel(t, 3600), '09:05');
	assert.equal(timeLabel(t, 7 * 86400), '11-24 09:05');
});
