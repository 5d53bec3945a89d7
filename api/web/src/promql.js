// SPDX-License-Identifier: Apache-2.0
//
// promql: the little PromQL text handling drill-down needs, with no DOM
// (tests/e2e/webui/unit.test.mjs runs it under node).

const NOT_METRICS = new Set([
	'and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool',
	'offset', 'inf', 'nan', 'Inf', 'NaN', 'atan2', 'start', 'end',
	// aggregations, which may put "by (...)" before their "("
	'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk',
	'topk', 'quantile', 'limitk', 'limit_ratio',
]);

export function promString(s) {
	return `"${String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/*
 * The query with matchers ({vm: "x"}) added to each vector selector:
 * `rate(a[1m]) / b{c="d"}` -> `rate(a{vm="x"}[1m]) / b{vm="x",c="d"}`.
 * Identifiers followed by "(" are functions; names after by/without/on/
 * ignoring/group_left/group_right are labels; strings, durations in [...]
 * and label matchers already naming a label are left alone.
 */
export function restrictQuery(query, matchers) {
	const add = Object.entries(matchers).filter(([, v]) => v !== undefined);
	let out = '';
	let i = 0;
	let grouping = false; // inside by (...), on (...), ...
	let lastWord = '';
	while (i < query.length) {
		const c = query[i];
		if (c === '"' || c === "'" || c === '`') {
			let j = i + 1;
			while (j < query.length && query[j] !== c) j += query[j] === '\\' && c !== '`' ? 2 : 1;
			out += query.slice(i, j + 1);
			i = j + 1;
			continue;
		}
		if (c === '[') {
			const j = query.indexOf(']', i);
			const end = j < 0 ? query.length : j + 1;
			out += query.slice(i, end);
			i = end;
			continue;
		}
		if (c === '(') {
			grouping = ['by', 'without', 'on', 'ignoring', 'group_left', 'group_right'].includes(lastWord);
			lastWord = '';
			out += c;
			i++;
			continue;
		}
		if (c === ')') {
			grouping = false;
			out += c;
			i++;
			continue;
		}
		if (c === '{' && !grouping) {
			// a selector without a name: {__name__=~"..."}
			const j = query.indexOf('}', i);
			out += withMatchers(query.slice(i, j < 0 ? query.length : j + 1), add);
			i = j < 0 ? query.length : j + 1;
			lastWord = '';
			continue;
		}
		if (/[A-Za-z_:]/.test(c) && !/[A-Za-z0-9_.]/.test(query[i - 1] || '')) {
			let j = i;
			while (j < query.length && /[A-Za-z0-9_:]/.test(query[j])) j++;
			const word = query.slice(i, j);
			let k = j;
			while (k < query.length && /\s/.test(query[k])) k++;
			const isFn = query[k] === '(';
			if (grouping || isFn || NOT_METRICS.has(word)) {
				out += word;
				i = j;
			} else if (query[k] === '{') {
				const e = query.indexOf('}', k);
				out += word + query.slice(j, k) + withMatchers(query.slice(k, e < 0 ? query.length : e + 1), add);
				i = e < 0 ? query.length : e + 1;
			} else {
				out += word + withMatchers('{}', add);
				i = j;
			}
			lastWord = word;
			continue;
		}
		if (!/\s/.test(c)) lastWord = '';
		out += c;
		i++;
	}
	return out;
}

// {a="b"} with the matchers of add that name labels it does not match on yet.
function withMatchers(braces, add) {
	const inner = braces.slice(1, -1).trim();
	const have = new Set([...inner.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)/g)].map((m) => m[1]));
	const extra = add.filter(([k]) => !have.has(k)).map(([k, v]) => `${k}=${promString(v)}`);
	return `{${[...extra, inner].filter(Boolean).join(',')}}`;
}

// The query of a drilldown entry with $vm and $vcpu put in (inside PromQL strings).
export function substitute(query, vars) {
	return query.replace(/\$(vm|vcpu)\b/g, (m, k) => (vars[k] === undefined ? m : String(vars[k]).replace(/["\\]/g, '\\$&')));
}
