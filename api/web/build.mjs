// SPDX-License-Identifier: Apache-2.0
//
// The web UI's npm side. The daemon build never runs npm: it embeds the
// committed src/ and vendor/ (api/web/meson.build, embed.py). This script
// makes and checks vendor/ from the lock file, and assembles a dist/ for
// working on the UI with any static file server.
//
//   node build.mjs vendor   (npm run vendor: npm ci first) copy the files
//                           VENDORED names from node_modules into vendor/
//                           and write vendor/VENDOR.json: package, version,
//                           the lock file's integrity, each file's SHA-256
//   node build.mjs check    (npm run check-vendor) vendor/ against the lock:
//                           offline, VENDOR.json against package-lock.json and
//                           the files against VENDOR.json (embed.py repeats
//                           this at build time); then, unless --offline, the
//                           registry's tarball (npm pack): its sha512 must be
//                           the lock's integrity and each vendored file must
//                           equal the tarball's bytes
//   node build.mjs dist     src/ and vendor/ into dist/, flat, as the daemon
//                           serves them (index.html at /, the rest at /static/)
//
// Exit status 0, or 1 with a message.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const VENDOR_DIR = path.join(HERE, 'vendor');
const MANIFEST = path.join(VENDOR_DIR, 'VENDOR.json');
const LOCK = path.join(HERE, 'package-lock.json');

// What is taken from each package: [path in the package, name in vendor/].
const VENDORED = {
	uplot: [
		['dist/uPlot.iife.min.js', 'uPlot.iife.min.js'],
		['dist/uPlot.min.css', 'uPlot.min.css'],
		['LICENSE', 'uPlot.LICENSE.txt'],
	],
};

function die(msg) {
	console.error(`build.mjs: ${msg}`);
	process.exit(1);
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
const readJson = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));

function lockEntry(lock, name) {
	const e = lock.packages?.[`node_modules/${name}`];
	if (!e) die(`${name} is not in package-lock.json: npm install first`);
	return e;
}

function vendor() {
	const lock = readJson(LOCK);
	const manifest = {
		comment: 'Made by `npm run vendor` (api/web/build.mjs) from package-lock.json; checked by embed.py at build time and by `npm run check-vendor`.',
		packages: [],
	};
	fs.mkdirSync(VENDOR_DIR, { recursive: true });
	for (const [name, files] of Object.entries(VENDORED)) {
		const entry = lockEntry(lock, name);
		const pkgDir = path.join(HERE, 'node_modules', name);
		const installed = readJson(path.join(pkgDir, 'package.json')).version;
		if (installed !== entry.version)
			die(`node_modules has ${name} ${installed}, the lock ${entry.version}: npm ci first`);
		const pkg = { name, version: entry.version, integrity: entry.integrity, files: [] };
		for (const [from, to] of files) {
			const buf = fs.readFileSync(path.join(pkgDir, from));
			fs.writeFileSync(path.join(VENDOR_DIR, to), buf);
			pkg.files.push({ name: to, from, sha256: sha256(buf) });
		}
		manifest.packages.push(pkg);
	}
	fs.writeFileSync(MANIFEST, JSON.stringify(manifest, null, 2) + '\n');
	console.log(`vendor/: ${manifest.packages.map((p) => `${p.name}@${p.version}`).join(', ')}`);
}

function checkOffline() {
	const lock = readJson(LOCK);
	const manifest = readJson(MANIFEST);
	const names = new Set(manifest.packages.map((p) => p.name));
	for (const name of Object.keys(VENDORED))
		if (!names.has(name)) die(`VENDOR.json has no ${name}: npm run vendor`);
	for (const pkg of manifest.packages) {
		const entry = lockEntry(lock, pkg.name);
		for (const key of ['version', 'integrity'])
			if (pkg[key] !== entry[key])
				die(`VENDOR.json: ${pkg.name} ${key} ${pkg[key]} but the lock has ${entry[key]}: npm run vendor`);
		for (const f of pkg.files) {
			const got = sha256(fs.readFileSync(path.join(VENDOR_DIR, f.name)));
			if (got !== f.sha256) die(`vendor/${f.name}: SHA-256 ${got}, VENDOR.json says ${f.sha256}`);
		}
	}
	return manifest;
}

function checkRegistry(manifest) {
	const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'novamon-web-check-'));
	try {
		for (const pkg of manifest.packages) {
			const out = execFileSync('npm', ['pack', `${pkg.name}@${pkg.version}`, '--json',
				'--pack-destination', tmp], { cwd: tmp, encoding: 'utf8' });
			const tgz = path.join(tmp, JSON.parse(out)[0].filename);
			const [algo, want] = pkg.integrity.split('-');
			const got = createHash(algo).update(fs.readFileSync(tgz)).digest('base64');
			if (got !== want)
				die(`${pkg.name}@${pkg.version}: the registry's tarball has ${algo} ${got}, the lock ${want}`);
			const dir = path.join(tmp, pkg.name);
			fs.mkdirSync(dir);
			execFileSync('tar', ['-xzf', tgz, '-C', dir]);
			for (const f of pkg.files) {
				const a = fs.readFileSync(path.join(dir, 'package', f.from));
				const b = fs.readFileSync(path.join(VENDOR_DIR, f.name));
				if (!a.equals(b)) die(`vendor/${f.name} differs from ${pkg.name}@${pkg.version}/${f.from}`);
			}
			console.log(`${pkg.name}@${pkg.version}: tarball ${algo} matches the lock; ${pkg.files.length} vendored files match it`);
		}
	} finally {
		fs.rmSync(tmp, { recursive: true, force: true });
	}
}

function dist() {
	const out = path.join(HERE, 'dist');
	fs.rmSync(out, { recursive: true, force: true });
	fs.mkdirSync(path.join(out, 'static'), { recursive: true });
	for (const dir of ['src', 'vendor']) {
		for (const f of fs.readdirSync(path.join(HERE, dir))) {
			if (f === 'VENDOR.json') continue;
			const dest = f === 'index.html' ? path.join(out, f) : path.join(out, 'static', f);
			fs.copyFileSync(path.join(HERE, dir, f), dest);
		}
	}
	console.log(`dist/: index.html and static/ (serve dist/ at /)`);
}

const [cmd, ...flags] = process.argv.slice(2);
if (cmd === 'vendor') {
	vendor();
	checkOffline();
} else if (cmd === 'check') {
	const manifest = checkOffline();
	console.log('vendor/ matches VENDOR.json and package-lock.json');
	if (!flags.includes('--offline')) checkRegistry(manifest);
} else if (cmd === 'dist') {
	checkOffline();
	dist();
} else {
	die('usage: node build.mjs vendor | check [--offline] | dist');
}
