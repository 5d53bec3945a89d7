#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Sweep of the ring pipeline benchmark, in the manner of the kernel's
# tools/testing/selftests/bpf/benchs/run_bench_ringbufs.sh: one invocation of
# bench_pipeline per configuration, a one-line summary each.
#
#   perf/run_bench_pipeline.sh [BENCH_PIPELINE]   (default build/perf/bench_pipeline)
#
# DURATION, WARMUP (seconds) and RINGS (ring sizes for the rate sweep) can be
# set in the environment.
set -eufo pipefail

BENCH=${1:-${BENCH_PIPELINE:-build/perf/bench_pipeline}}
DURATION=${DURATION:-1}
WARMUP=${WARMUP:-0.25}
RINGS=${RINGS:-"8388608 1048576 262144"}
NCPUS=$(nproc)
RUN="$BENCH --duration $DURATION --warmup $WARMUP"

header() {
	printf '\n%s\n' "$1"
	printf '%s\n' "$1" | tr '[:print:]' '-'
}

# The table row of a run, without the bench lines.
summarize() {
	grep -E '^(p[0-9]|offered)' <<<"$1" | sed 's/^/  /'
}

header "Producers x batch, threshold wake-up (ring 8 MiB, wakeup_bytes 256 KiB)"
for p in $(seq "$NCPUS"); do
	for b in 1 8 64; do
		summarize "$($RUN --producers "$p" --batch "$b" --wakeup threshold sweep)"
	done
done

header "Producers x batch, forced wake-up per event"
for p in $(seq "$NCPUS"); do
	for b in 1 8 64; do
		summarize "$($RUN --producers "$p" --batch "$b" --wakeup force sweep)"
	done
done

header "wakeup_bytes, $NCPUS producers, batch 64"
for wb in 4096 65536 262144 1048576; do
	printf '  wakeup_bytes %-8s' "$wb"
	summarize "$($RUN --producers "$NCPUS" --batch 64 --wakeup threshold \
		--wakeup-bytes "$wb" sweep)" | sed 's/^ *p[^ ]* *//'
done

for rb in $RINGS; do
	header "Offered rate, $NCPUS producers, batch 64, ring $rb B/CPU"
	wb=$((rb / 32 < 262144 ? rb / 32 : 262144))
	summarize "$($RUN --ring-bytes "$rb" --wakeup-bytes "$wb" rate)"
done

header "Cost per syscall: untraced, filtered out, one event"
$RUN overhead | grep -E '^(none|filtered|traced|bench)' | sed 's/^/  /'
