#!/usr/bin/env bash
# Builds Hearth and runs every test: the release build, then the whole suite
# again under AddressSanitizer + UndefinedBehaviorSanitizer, then each fuzz
# target for a short time. Uses ../shared when present (tests skip without it).
#   FUZZ_SECONDS=N   time per fuzz target (default 10; 0 skips fuzzing)
#   QUICK=1          release build and tests only
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)

# Each stage's heading, with how long the one before it took (CI has a budget).
stage_start=$SECONDS
stage() {
  [ -n "${stage_name:-}" ] && echo "   ($stage_name: $((SECONDS - stage_start)) s)"
  stage_name=$1 stage_start=$SECONDS
  echo "== $1"
}

# The server tests also drive Hearth with the official openai and Anthropic npm
# clients (pinned: a newer major may drop the Node 18 Debian ships). Without
# them they would skip that part, so a failed install stops here unless
# HEARTH_SKIP_NPM=1.
if [ "${HEARTH_SKIP_NPM:-0}" != 1 ]; then
  if [ ! -d build/npm/node_modules/openai ] || [ ! -d build/npm/node_modules/@anthropic-ai/sdk ]; then
    npm install --prefix build/npm --no-audit --no-fund --loglevel=error \
      openai@6.49.0 @anthropic-ai/sdk@1.12.0 >/dev/null || {
      echo "error: npm install of the clients failed (HEARTH_SKIP_NPM=1 runs the tests without them)" >&2
      exit 1
    }
  fi
  export HEARTH_REQUIRE_OPENAI_CLIENT=1 # the tests fail instead of skipping that part
fi

stage "cppcheck (scripts/lint.sh)"
# clang-tidy (lint.sh's second half) takes minutes on two cores: run it with
# `bash scripts/lint.sh` before committing, not here
HEARTH_LINT_TIDY=0 bash scripts/lint.sh

stage "release build (warnings are errors) + tests"
cmake --preset ci >/dev/null
cmake --build --preset ci -j"$jobs"
ctest --preset ci -j"$jobs"

stage "model-level tests again on the AVX2 kernels (HEARTH_ISA=avx2)"
HEARTH_ISA=avx2 ctest --preset ci -j"$jobs" -R 'test_model|test_conformance|test_decode_multi|test_generate|test_gen_step|test_spec|test_kv_quant_model|test_archs|test_lfm2|test_ssm|test_moe|test_encoders'
stage "and on the scalar references (HEARTH_ISA=scalar)"
# not test_spec: its draft-and-verify logic is the kernels' client, not their
# test, and its F32 models spend 70 s in the reference dot product
HEARTH_ISA=scalar ctest --preset ci -j"$jobs" -R 'test_model|test_conformance|test_decode_multi|test_generate|test_kv_quant_model|test_archs|test_lfm2|test_ssm|test_moe|test_encoders'
[ "${QUICK:-0}" = 1 ] && exit 0

stage "NEON kernels: aarch64 cross build, tests under qemu-user"
bash tools/cross_check_neon.sh build/neon-cross

# One sanitized build serves the tests and the fuzzers: clang's ASan + UBSan
# with libFuzzer's coverage instrumentation (the fuzz preset).
stage "ASan + UBSan build (clang, libFuzzer's instrumentation)"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j"$jobs"
stage "ASan + UBSan tests"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --preset fuzz -j"$jobs"

secs=${FUZZ_SECONDS:-10} # per target, $jobs at a time: a smoke run within CI's time
if [ "$secs" -gt 0 ]; then
  stage "libFuzzer targets, ${secs}s each, $jobs at a time"
  targets=$(ls fuzz/fuzz_*.c | xargs -n1 basename | sed 's/\.c$//')
  # One target, its corpus copied so the run does not grow the repository's;
  # the whole log when it fails (the crash and the input that caused it).
  fuzz_one() {
    local name=$1 secs=$2 work rc=0
    work=$(mktemp -d)
    cp -r "fuzz/corpus/${name#fuzz_}"/. "$work"/ 2>/dev/null || true
    "build/fuzz/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=0 "$work" >"$work.log" 2>&1 || rc=$?
    echo "-- $name"
    if [ "$rc" -ne 0 ]; then cat "$work.log"; else tail -n 2 "$work.log"; fi
    rm -rf "$work" "$work.log"
    return "$rc"
  }
  export -f fuzz_one
  printf '%s\n' $targets | xargs -P "$jobs" -I{} bash -c "fuzz_one {} $secs"
fi
stage "all tests passed, in $SECONDS s"
