#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# What tracing costs the traced workload, novamon against bpftrace counting
# the same tracepoints, measured in one run:
#
#   kvm    exits/s of the test guest (tests/integration/kvm_guest --rate):
#          untraced, under `novamon run --probes kvm`, under bpftrace counting
#          kvm:kvm_userspace_exit, kvm_pio, kvm_mmio, kvm_emulate_insn,
#          kvm_vcpu_wakeup, kvm_exit, kvm_entry. Skipped, with a bench line
#          saying so, where /dev/kvm is missing or KVM_CREATE_VM fails.
#   block  O_DIRECT 4 KiB reads/s, queue depth 1, on a loop device
#          (perf/bench_odirect): untraced, under `novamon run --probes
#          block`, under bpftrace counting block:block_rq_issue and
#          block:block_rq_complete.
#
# Each mode runs the workload ROUNDS times and keeps the median. Prints
# `bench overhead_<w>_<mode> <rate> <unit>` and the ratios traced/untraced
# (`bench overhead_<w>_{novamon,bpftrace}_ratio`). Needs root; exits 77
# (skipped) without it. Tools come from the environment (set by meson) or the
# build directory:
#   NOVAMON_BIN, KVM_GUEST, BENCH_ODIRECT, BPFTRACE; BUILD_DIR (default ./build)
set -euo pipefail

BUILD_DIR=${BUILD_DIR:-build}
NOVAMON_BIN=${NOVAMON_BIN:-$BUILD_DIR/novamon}
KVM_GUEST=${KVM_GUEST:-$BUILD_DIR/tests/integration/kvm_guest}
BENCH_ODIRECT=${BENCH_ODIRECT:-$BUILD_DIR/perf/bench_odirect}
BPFTRACE=${BPFTRACE:-/usr/bin/bpftrace}
EXITS=200000
READS=30000
ROUNDS=5
WORKLOADS="kvm block"
TRACEFS=/sys/kernel/tracing

usage() {
	cat <<EOF
Usage: $0 [OPTIONS]
Exits/s of a KVM test guest and O_DIRECT reads/s on a loop device, untraced,
under novamon and under bpftrace counting the same tracepoints.

  -e, --exits N       guest exits per round (default $EXITS)
  -n, --reads K       O_DIRECT reads per round (default $READS)
  -r, --rounds R      rounds per mode, the median is kept (default $ROUNDS)
  -w, --workloads L   "kvm block", "kvm" or "block" (default "$WORKLOADS")
  -h, --help          show this help
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	-e | --exits) EXITS=$2; shift 2 ;;
	-n | --reads) READS=$2; shift 2 ;;
	-r | --rounds) ROUNDS=$2; shift 2 ;;
	-w | --workloads) WORKLOADS=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done

if [ "$(id -u)" != 0 ]; then
	echo "bench overhead skipped: needs root"
	exit 77
fi
for f in "$NOVAMON_BIN" "$BENCH_ODIRECT"; do
	if [ ! -x "$f" ]; then
		echo "bench_overhead: $f not built (set BUILD_DIR or the variables)" >&2
		exit 1
	fi
done

DAEMON_PID=
TRACER_PID=
LOOP=
BACKING=
TMP=$(mktemp -d /tmp/novamon-bench.XXXXXX)

# Stop only what this script started, by pid.
cleanup() {
	stop_daemon
	stop_tracer
	if [ -n "$LOOP" ]; then
		losetup -d "$LOOP" || true
	fi
	if [ -n "$BACKING" ]; then
		rm -f "$BACKING"
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.4f", a / b; else print "nan" }'
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_daemon FAMILY PROGRAM...: novamon with one probe family; fails unless
# every listed program is attached.
start_daemon() {
	local family=$1 port deadline health prog
	shift
	port=$(free_port)
	"$NOVAMON_BIN" run --listen "127.0.0.1:$port" --probes "$family" \
		>"$TMP/novamon.log" 2>&1 &
	DAEMON_PID=$!
	deadline=$((SECONDS + 20))
	health=
	while [ $SECONDS -lt $deadline ]; do
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			echo "bench_overhead: novamon exited:" >&2
			cat "$TMP/novamon.log" >&2
			return 1
		fi
		health=$(curl -sf "http://127.0.0.1:$port/health" || true)
		# "starting" until capture is set up; then "ok" or "degraded".
		if grep -Eq '"status": *"(ok|degraded)"' <<<"$health"; then
			break
		fi
		health=
		sleep 0.1
	done
	if [ -z "$health" ]; then
		echo "bench_overhead: novamon was not up on /health within 20 s" >&2
		return 1
	fi
	for prog in "$@"; do
		if ! HEALTH="$health" python3 - "$family" "$prog" <<'EOF'; then
import json, os, sys
h = json.loads(os.environ["HEALTH"])
fam, prog = sys.argv[1], sys.argv[2]
ok = any(p["family"] == fam and p["program"] == prog and p["attached"]
         for p in h["capture"]["probes"])
sys.exit(0 if ok else 1)
EOF
			echo "bench_overhead: novamon did not attach $family/$prog:" >&2
			echo "$health" >&2
			return 1
		fi
	done
}

stop_daemon() {
	if [ -n "$DAEMON_PID" ]; then
		kill -TERM "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
		DAEMON_PID=
	fi
}

# start_tracer TRACEPOINT...: bpftrace counting each tracepoint; returns when
# the probes are attached.
start_tracer() {
	local probes deadline
	probes=$(printf 'tracepoint:%s,' "$@")
	"$BPFTRACE" -e "${probes%,} { @[probe] = count(); }" >"$TMP/bpftrace.log" 2>&1 &
	TRACER_PID=$!
	deadline=$((SECONDS + 60))
	while [ $SECONDS -lt $deadline ]; do
		if ! kill -0 "$TRACER_PID" 2>/dev/null; then
			echo "bench_overhead: bpftrace exited:" >&2
			cat "$TMP/bpftrace.log" >&2
			TRACER_PID=
			return 1
		fi
		if grep -q '^Attaching' "$TMP/bpftrace.log"; then
			sleep 0.5 # "Attaching" is printed just before the attach
			return 0
		fi
		sleep 0.1
	done
	echo "bench_overhead: bpftrace did not attach within 60 s" >&2
	return 1
}

# stop_tracer: SIGINT makes bpftrace print its counts; show them on stderr.
stop_tracer() {
	if [ -n "$TRACER_PID" ]; then
		kill -INT "$TRACER_PID" 2>/dev/null || true
		wait "$TRACER_PID" 2>/dev/null || true
		TRACER_PID=
		grep '^@' "$TMP/bpftrace.log" >&2 || true
	fi
}

# The workloads: one rate per run on stdout.
kvm_once() {
	"$KVM_GUEST" --exits "$EXITS" --rate 2>/dev/null |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["exits_per_sec"])'
}

block_once() {
	"$BENCH_ODIRECT" --reads "$READS" --cpu 0 "$LOOP" | awk '{ print $6 }'
}

# measure WORKLOAD: the median rate over ROUNDS runs.
measure() {
	local _
	for _ in $(seq "$ROUNDS"); do
		"${1}_once"
	done | median
}

# overhead WORKLOAD UNIT FAMILY "NOVAMON_PROGRAMS" TRACEPOINT...
overhead() {
	local w=$1 unit=$2 family=$3 programs=$4 base nova trace
	shift 4
	base=$(measure "$w")
	echo "bench overhead_${w}_untraced $base $unit"
	# shellcheck disable=SC2086 # programs is a list
	start_daemon "$family" $programs
	nova=$(measure "$w")
	stop_daemon
	echo "bench overhead_${w}_novamon $nova $unit"
	start_tracer "$@"
	trace=$(measure "$w")
	stop_tracer
	echo "bench overhead_${w}_bpftrace $trace $unit"
	echo "bench overhead_${w}_novamon_ratio $(ratio "$nova" "$base") x"
	echo "bench overhead_${w}_bpftrace_ratio $(ratio "$trace" "$base") x"
	echo "bench overhead_${w}_novamon_vs_bpftrace $(ratio "$nova" "$trace") x"
}

kvm_usable() {
	[ -c /dev/kvm ] || return 1
	[ -x "$KVM_GUEST" ] || return 1
	# The guest exits 77 when it cannot open /dev/kvm or KVM_CREATE_VM fails.
	"$KVM_GUEST" --exits 1 >/dev/null 2>&1
}

bench_kvm() {
	local tps=() progs=() tp
	if ! kvm_usable; then
		echo "bench overhead_kvm skipped: no usable /dev/kvm"
		return 0
	fi
	if [ ! -d "$TRACEFS/events/kvm" ]; then
		mount -t tracefs nodev "$TRACEFS" 2>/dev/null || true
	fi
	# kvm_exit/kvm_entry exist only with kvm_intel or kvm_amd: count what exists.
	for tp in kvm_userspace_exit kvm_pio kvm_mmio kvm_emulate_insn kvm_vcpu_wakeup \
		kvm_exit kvm_entry; do
		if [ -d "$TRACEFS/events/kvm/$tp" ]; then
			tps+=("kvm:$tp")
			progs+=("$tp")
		fi
	done
	if [ ${#tps[@]} -eq 0 ]; then
		echo "bench overhead_kvm skipped: no kvm tracepoints in $TRACEFS"
		return 0
	fi
	echo "# kvm: $EXITS exits per run, median of $ROUNDS, tracepoints: ${tps[*]}"
	overhead kvm exits/s kvm "${progs[*]}" "${tps[@]}"
}

bench_block() {
	BACKING=$(mktemp /var/tmp/novamon-bench-loop.XXXXXX)
	truncate -s 64M "$BACKING"
	LOOP=$(losetup -f --show "$BACKING")
	# Warm the backing file into the page cache: reads then cost CPU, not disk.
	"$BENCH_ODIRECT" --reads 16384 "$LOOP" >/dev/null
	echo "# block: $READS O_DIRECT 4 KiB reads per run on $LOOP (64 MiB file in page cache)," \
		"queue depth 1, pinned to CPU 0, median of $ROUNDS"
	overhead block reads/s block "block_rq_issue block_rq_complete" \
		block:block_rq_issue block:block_rq_complete
}

for w in $WORKLOADS; do
	case "$w" in
	kvm) bench_kvm ;;
	block) bench_block ;;
	*) echo "bench_overhead: unknown workload '$w'" >&2; exit 2 ;;
	esac
done
