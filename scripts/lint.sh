#!/usr/bin/env bash
# Static analysis that must stay quiet: cppcheck over src/ (warnings,
# performance, portability). Deliberate exceptions are inline
# (`// cppcheck-suppress ID` with a comment saying why) except one rule:
# the SIMD kernels read floats out of byte buffers (block layouts, KV rows)
# by design, so invalidPointerCast is off under src/kernels/.
set -euo pipefail
cd "$(dirname "$0")/.."
cppcheck --quiet --error-exitcode=1 --inline-suppr --std=c11 \
  --enable=warning,performance,portability \
  --suppress=missingIncludeSystem --suppress='invalidPointerCast:src/kernels/*' \
  -I include -I src -j"$(nproc)" src/
