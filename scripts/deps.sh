#!/usr/bin/env bash
# Installs the Debian 12 packages Hearth builds, tests and benchmarks with.
# Idempotent: does nothing when every package is already installed.
set -euo pipefail
packages=(
  build-essential cmake pkg-config clang libclang-rt-14-dev   # compilers, sanitizers, libFuzzer
  libpcre2-dev            # pre-tokenizer regexes
  libcjson-dev            # JSON (server, cloud tiers)
  libmicrohttpd-dev       # HTTP server
  libcurl4-openssl-dev    # cloud tier client
  libsqlite3-dev          # ledger, audit log
  libxml2-dev             # hearth rag index: the text of HTML files
  libpoppler-glib-dev     # hearth rag index: the text of PDF files (brings glib and cairo; about 9 MB)
  libpng-dev libjpeg62-turbo-dev   # images for vision projectors (PNG, JPEG)
  python3-numpy           # ../shared/perf/gguf_synth.py (benchmark model files)
  python3-sentencepiece   # test_tokenizer_ugm: unigram vocabularies and their ids from SentencePiece
  gnuplot-nox             # bench/cascade/run.sh: the cost-versus-quality plot (optional)
  cppcheck                # scripts/lint.sh: static analysis, must stay quiet
  clang-tidy              # scripts/lint.sh: the .clang-tidy profile, must stay quiet
  curl                    # server tests
  nodejs                  # node: the official openai npm client in the server tests (npm below)
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user   # NEON kernels, cross-checked under qemu
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Debian's nodejs comes without npm (a package of its own); NodeSource's
# nodejs bundles it and conflicts with Debian's npm, so ask only when absent.
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
