#!/usr/bin/env bash
# Builds Hearth and runs every test: the release build, then the whole suite
# again under AddressSanitizer + UndefinedBehaviorSanitizer, then each fuzz
# target for a short time. Uses ../shared when present (tests skip without it).
#   FUZZ_SECONDS=N   time per fuzz target (default 15; 0 skips fuzzing)
#   QUICK=1          release build and tests only
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)

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

echo "== cppcheck (scripts/lint.sh)"
bash scripts/lint.sh

echo "== release build (warnings are errors) + tests"
cmake --preset ci >/dev/null
cmake --build --preset ci -j"$jobs"
ctest --preset ci -j"$jobs"

echo "== model-level tests again on the AVX2 kernels (HEARTH_ISA=avx2; about 20 s)"
HEARTH_ISA=avx2 ctest --preset ci -j"$jobs" -R 'test_model|test_conformance|test_decode_multi|test_generate|test_gen_step|test_spec|test_kv_quant_model'
echo "== and on the scalar references (HEARTH_ISA=scalar; about 20 s)"
HEARTH_ISA=scalar ctest --preset ci -j"$jobs" -R 'test_model|test_conformance|test_decode_multi|test_generate|test_spec|test_kv_quant_model'
[ "${QUICK:-0}" = 1 ] && exit 0

echo "== NEON kernels: aarch64 cross build, tests under qemu-user"
bash tools/cross_check_neon.sh build/neon-cross

echo "== ASan + UBSan build + tests"
cmake --preset asan >/dev/null
cmake --build --preset asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --preset asan -j"$jobs"

secs=${FUZZ_SECONDS:-15} # 22 targets: keeps the whole run near 16 minutes
if [ "$secs" -gt 0 ]; then
  echo "== libFuzzer targets, ${secs}s each"
  cmake --preset fuzz >/dev/null
  targets=$(ls fuzz/fuzz_*.c | xargs -n1 basename | sed 's/\.c$//')
  cmake --build --preset fuzz -j"$jobs" --target $targets
  for name in $targets; do
    bin=build/fuzz/$name
    corpus="fuzz/corpus/${name#fuzz_}"
    work=$(mktemp -d)
    cp -r "$corpus"/. "$work"/ 2>/dev/null || true
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 "$work" 2>&1 | tail -n 3
    rm -rf "$work"
  done
fi
echo "== all tests passed"
