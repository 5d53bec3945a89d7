#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Build the libFuzzer harnesses with clang (ASan + UBSan) and run each for
# SECONDS (default 20) from its seed corpus. Fails on any crash, leak or
# sanitizer report. Usage: tests/fuzz/run.sh [SECONDS]
# Environment: FUZZ_OUT (work dir, default a temp dir), FUZZ_JOBS (libFuzzer
# -jobs/-workers, default 1), FUZZ_ONLY (one harness name).
set -eu

secs=${1:-20}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-$(mktemp -d /tmp/novamon-fuzz.XXXXXX)}
jobs=${FUZZ_JOBS:-1}
cc=${CC_FUZZ:-clang}
mkdir -p "$out/gen"

cflags="-g -O1 -std=gnu11 -D_GNU_SOURCE -DNOVAMON_VERSION=\"fuzz\" -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-Wall -Wextra -Werror -Wno-missing-field-initializers \
	-I$out/gen -I$top/api -I$top/userspace -I$top"

protoc-c --proto_path="$top/api/proto" --c_out="$out/gen" remote.proto types.proto

build() {
	name=$1
	shift
	echo "== build $name"
	# the generated protobuf code is not ours to keep warning-free
	$cc $cflags "$@" -o "$out/$name" -Wno-error $(pkg-config --cflags libprotobuf-c jansson) \
		$(pkg-config --libs libprotobuf-c jansson) -lsnappy -lm
}

par=""
[ "$jobs" -le 1 ] || par="-jobs=$jobs -workers=$jobs"

run() {
	name=$1
	mkdir -p "$out/corpus-$name"
	echo "== run $name for ${secs}s"
	# new inputs go to the work corpus; the committed seeds stay read-only
	"$out/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 $par \
		-artifact_prefix="$out/$name-" "$out/corpus-$name" "$here/corpus/$name"
}

want() {
	[ -z "${FUZZ_ONLY:-}" ] || [ "$FUZZ_ONLY" = "$1" ]
}

ingest_src="$top/api/ingest.c $top/api/pb_arena.c $top/userspace/metrics.c $here/fuzz_stubs.c $out/gen/remote.pb-c.c $out/gen/types.pb-c.c"
status=0
if want json_ingest; then
	build json_ingest "$here/fuzz_json_ingest.c" $ingest_src
	run json_ingest || status=1
fi
if want remote_write; then
	build remote_write "$here/fuzz_remote_write.c" $ingest_src
	run remote_write || status=1
fi
if want promql; then
	# the engine's value formatting is C++ (double-conversion): built apart
	${CXX_FUZZ:-clang++} -g -O1 -fsanitize=address,undefined -c \
		"$top/userspace/promql/dtoa.cc" -o "$out/dtoa.o"
	build promql "$here/fuzz_promql.c" "$top/userspace/promql/parser.c" \
		"$top/userspace/promql/lexer.c" "$top/userspace/promql/functions.c" \
		"$top/userspace/promql/eval.c" "$top/userspace/promql/tenant.c" \
		"$top/userspace/rx.c" "$here/fuzz_stubs.c" "$out/dtoa.o" -ldouble-conversion -lstdc++
	run promql || status=1
fi
if want ws_sub; then
	build ws_sub "$here/fuzz_ws_sub.c" "$top/api/ws_proto.c"
	run ws_sub || status=1
fi
[ $status -eq 0 ] && echo "== fuzz: no crash ($out)" || echo "== fuzz: FAILED, see $out"
exit $status
