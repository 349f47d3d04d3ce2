#!/bin/sh
# cross_check_neon.sh - builds the kernels (scalar references, NEON, dispatch)
# and the core layer for aarch64 with a cross compiler, links them statically
# with tests/test_kernels_simd.c and runs the test under qemu-user, so the
# NEON kernels are checked against the scalar ones on an x86 machine.
#
# Needs (Debian): gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user.
# No PCRE2 or other library: the kernels depend on libc, libm and pthreads.
#
# usage: tools/cross_check_neon.sh [build dir (default: build/neon-cross)]
# Environment: CC (default aarch64-linux-gnu-gcc), QEMU (default
# qemu-aarch64), QEMU_CPU (default max: has dotprod and fp16), CFLAGS_EXTRA.
# Exit status: that of the test (0 pass, 1 fail, 77 skipped), 2 on setup errors.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$root/build/neon-cross"}
cc=${CC:-aarch64-linux-gnu-gcc}
qemu=${QEMU:-qemu-aarch64}
cpu=${QEMU_CPU:-max}

for tool in "$cc" "$qemu"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "cross_check_neon: $tool not found (apt-get install gcc-aarch64-linux-gnu" \
             "libc6-dev-arm64-cross qemu-user)" >&2
        exit 2
    fi
done

mkdir -p "$out"
warn="-Wall -Wextra -Wshadow -Wvla -Wconversion -Wno-sign-conversion -Wstrict-prototypes
      -Wmissing-prototypes -Wformat=2 -Werror"
base="-std=c17 -O2 -g -D_POSIX_C_SOURCE=200809L -I$root/include -I$root/src -I$root/tests
      ${CFLAGS_EXTRA:-}"

start=$(date +%s)
objs=""
for src in "$root"/src/core/*.c "$root"/src/kernels/*.c; do
    name=$(basename "$src" .c)
    case "$name" in
    x86_*) continue ;;                                  # other architecture
    arm_*) flags="-march=armv8.2-a+dotprod+fp16" ;;     # as CMakeLists.txt
    ref_*) flags="-ffp-contract=off" ;;                 # as CMakeLists.txt
    *) flags="" ;;
    esac
    # shellcheck disable=SC2086 # word splitting of the flag lists is intended
    "$cc" $base $warn $flags -c "$src" -o "$out/$name.o"
    objs="$objs $out/$name.o"
done
# shellcheck disable=SC2086
"$cc" $base $warn -DHEARTH_SHARED_DIR="\"$root/../shared\"" -DHEARTH_SOURCE_DIR="\"$root\"" \
    -DHEARTH_BINARY="\"\"" -static "$root/tests/test_kernels_simd.c" $objs \
    -o "$out/test_kernels_simd" -lm -lpthread
built=$(date +%s)

status=0
"$qemu" -cpu "$cpu" "$out/test_kernels_simd" || status=$?
done_at=$(date +%s)
echo "cross_check_neon: build $((built - start)) s, run under $qemu -cpu $cpu" \
     "$((done_at - built)) s, status $status"
exit "$status"
