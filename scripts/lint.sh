#!/usr/bin/env bash
# Static analysis that must stay quiet.
#
# 1. cppcheck over src/ (warnings, performance, portability). Deliberate
#    exceptions are inline (`// cppcheck-suppress ID` with a comment saying
#    why) except one rule: the SIMD kernels read floats out of byte buffers
#    (block layouts, KV rows) by design, so invalidPointerCast is off under
#    src/kernels/.
# 2. clang-tidy with the profile in .clang-tidy (the analyzer, bugprone, cert,
#    misc, performance, portability, readability, concurrency; what is left
#    out is listed there with its reason) over every C file of the build:
#    src/, tests/, fuzz/ and bench/, in parallel; any finding fails. A
#    deliberate exception is `// NOLINT(check): why` on its line;
#    tools/tidy_models.h tells the analyzer what cJSON does. It needs
#    clang-tidy (Debian's clang-tidy, 14) and clang, and is skipped with a
#    message without them; HEARTH_LINT_TIDY=0 skips it too (it takes minutes).
#
# scripts/lint.sh FILE... runs clang-tidy alone, on those files.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || cppcheck --quiet --error-exitcode=1 --inline-suppr --std=c11 \
  --enable=warning,performance,portability \
  --suppress=missingIncludeSystem --suppress='invalidPointerCast:src/kernels/*' \
  -I include -I src -j"$(nproc)" src/

if [ "${HEARTH_LINT_TIDY:-1}" = 0 ]; then
  echo "lint: clang-tidy skipped (HEARTH_LINT_TIDY=0)"
  exit 0
fi
tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
if [ -z "$tidy" ] || ! command -v clang >/dev/null; then
  echo "lint: clang-tidy skipped: clang-tidy or clang is not installed (scripts/deps.sh installs both)"
  exit 0
fi
# The compile commands of a clang configuration (gcc-only flags would trip
# clang-tidy); configuring writes them, nothing is built.
db=build/tidy
CC=clang cmake -S . -B "$db" -DCMAKE_BUILD_TYPE=Release >/dev/null
if [ $# -gt 0 ]; then
  files=$(for f in "$@"; do realpath "$f"; done)
else
  files=$(grep -o '"file": "[^"]*"' "$db/compile_commands.json" | cut -d'"' -f4 |
    grep -E "^$PWD/(src|tests|fuzz|bench)/" | sort -u)
fi
# -UNDEBUG: the analyzer should see the asserts that state invariants. Each
# file's output is printed only when it has findings.
export TIDY="$tidy" TIDY_DB="$db" TIDY_MODELS="$PWD/tools/tidy_models.h"
if ! printf '%s\n' $files | xargs -P "$(nproc)" -n 1 bash -c \
  'out=$("$TIDY" -p "$TIDY_DB" --quiet --warnings-as-errors="*" --extra-arg=-UNDEBUG \
     --extra-arg=-include --extra-arg="$TIDY_MODELS" "$1" 2>&1) || { printf "%s\n" "$out"; exit 1; }' _
then
  echo "lint: clang-tidy found problems (above)" >&2
  exit 1
fi
echo "lint: clang-tidy is quiet on $(printf '%s\n' $files | wc -l) files"
