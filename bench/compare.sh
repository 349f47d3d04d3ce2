#!/usr/bin/env bash
# bench/compare.sh - rebuilds the benchmark model files of ../shared/perf with
# gguf_synth.py (F16) and `hearth quantize` (Q8_0, Q4_0, Q4_K_M), checks their
# sha256 against ../shared/perf/README.md, runs `hearth bench` with the
# parameters of the llama.cpp baseline table there, and prints both side by
# side. See bench/README.md.
#
#   bench/compare.sh OUTDIR              everything (about 4 GB of files in OUTDIR)
#   FILES="smollm2-135m.Q8_0 qwen2.5-0.5b.Q4_0" bench/compare.sh OUTDIR
#                                        only these files (and what they are made from)
#   REPS=3 THREADS=1,2 HEARTH=path/to/hearth SHARED=path/to/shared  (defaults shown by -h)
#   LLAMA_BENCH=path/to/llama-bench     also run llama.cpp's llama-bench (which you
#                                       built yourself) on each file right after Hearth,
#                                       and compare with that instead of the table
#
# OUTDIR must be outside the repository. Files already in OUTDIR are reused.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -ne 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  echo "defaults: REPS=3 THREADS=1,2 SHARED=$here/../shared HEARTH=(release build in build/bench-release)"
  exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
case "$out/" in
  "$here"/*) echo "compare.sh: OUTDIR must be outside the repository ($here)" >&2; exit 2 ;;
esac

shared=${SHARED:-$here/../shared}
perf=$shared/perf
python=${PYTHON:-/usr/bin/python3}
reps=${REPS:-3}
threads=${THREADS:-1,2}
all="smollm2-135m.F16 smollm2-135m.Q8_0 smollm2-135m.Q4_0 smollm2-135m.Q4_K_M
     qwen2.5-0.5b.Q8_0 qwen2.5-0.5b.Q4_0 qwen2.5-0.5b.Q4_K_M
     llama3.2-1b.Q8_0 llama3.2-1b.Q4_0 llama3.2-1b.Q4_K_M"
files=${FILES:-$all}

[ -f "$perf/gguf_synth.py" ] || { echo "compare.sh: $perf/gguf_synth.py not found (set SHARED)" >&2; exit 1; }
"$python" -c 'import numpy' 2>/dev/null ||
  { echo "compare.sh: $python has no numpy (Debian: apt-get install python3-numpy)" >&2; exit 1; }

# A release build of hearth (benchmarks of a debug build mean nothing).
hearth=${HEARTH:-}
if [ -z "$hearth" ]; then
  cmake -S "$here" -B "$here/build/bench-release" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$here/build/bench-release" -j"$(nproc)" --target hearth_cli >/dev/null
  hearth=$here/build/bench-release/hearth
fi

# ---- the model files ----
make_f16() { # model
  local f=$out/$1.F16.gguf
  [ -f "$f" ] && return
  echo "making $f (gguf_synth.py)" >&2
  "$python" "$perf/gguf_synth.py" --preset "$1" --dtype f16 --seed 7 --name "$1-random" -o "$f.tmp" >/dev/null
  mv "$f.tmp" "$f"
}
for file in $files; do
  model=${file%.*}
  type=${file##*.}
  make_f16 "$model"
  if [ "$type" != F16 ] && [ ! -f "$out/$file.gguf" ]; then
    echo "making $out/$file.gguf (hearth quantize)" >&2
    "$hearth" quantize -q "$out/$model.F16.gguf" "$out/$file.gguf.tmp" "$type" 2 >/dev/null
    mv "$out/$file.gguf.tmp" "$out/$file.gguf"
  fi
done

# ---- sha256 against the table of ../shared/perf/README.md ----
echo "sha256 of the files against $perf/README.md:"
for file in $files; do
  want=$(sed -n "s/^| $file\.gguf | \`\([0-9a-f]*\)\` |$/\1/p" "$perf/README.md")
  got=$(sha256sum "$out/$file.gguf" | cut -d' ' -f1)
  if [ -z "$want" ]; then echo "  $file.gguf: no reference sha256"
  elif [ "$want" = "$got" ]; then echo "  $file.gguf: identical to llama.cpp's file"
  else echo "  $file.gguf: DIFFERENT ($got)"; fi
done

# ---- hearth bench (and llama-bench right after it), file by file ----
jsonl=$out/hearth-bench.jsonl
peer=$out/llama-bench.jsonl
: >"$jsonl"
: >"$peer"
for file in $files; do
  prompts=128
  [ "${file%.*}" = smollm2-135m ] && prompts=128,512
  echo "hearth bench -m $file.gguf -t $threads -p $prompts -n 64 -r $reps" >&2
  "$hearth" bench -m "$out/$file.gguf" -t "$threads" -p "$prompts" -n 64 -r "$reps" -o jsonl >>"$jsonl"
  if [ -n "${LLAMA_BENCH:-}" ]; then
    echo "llama-bench -m $file.gguf -t $threads -p $prompts -n 64 -r $reps" >&2
    "$LLAMA_BENCH" -m "$out/$file.gguf" -t "$threads" -p "$prompts" -n 64 -r "$reps" -o jsonl \
      2>/dev/null >>"$peer"
  fi
done

# ---- side by side with the baseline table ----
"$python" - "$perf/README.md" "$jsonl" "$peer" <<'EOF'
import json, re, sys
readme, jsonl, peer = sys.argv[1], sys.argv[2], sys.argv[3]

def load(path):  # llama-bench's jsonl fields, which hearth bench shares
    rows = {}
    for line in open(path):
        r = json.loads(line)
        name = r["model_filename"].rsplit("/", 1)[-1].removesuffix(".gguf")
        test = f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}"
        rows.setdefault((name, r["n_threads"]), {})[test] = (r["avg_ts"], r["stddev_ts"])
    return rows

rows, base = load(jsonl), {}
isa = next((json.loads(l).get("isa", "?") for l in open(jsonl)), "?")
live = load(peer)
if live:
    source = f"llama-bench run right after each hearth bench ({peer})"
    for key, tests in live.items():
        base[key] = {t: f"{a:.1f} ± {sd:.1f}" for t, (a, sd) in tests.items()}
else:
    source = f"the baseline table of {readme}"
    for line in open(readme):
        m = re.match(r"^\| ([\w.\-]+) \| (\d) \| (\d+) \| (.*) \| (.*) \| (.*) \|$", line.strip())
        if m:
            base[(m.group(1), int(m.group(2)))] = dict(zip(("pp128", "pp512", "tg64"), m.group(4, 5, 6)))
print(f"\nhearth (isa {isa}) vs llama.cpp: {source}; tokens/s, mean ± std; ratio = hearth / llama.cpp\n")
print("| model file | threads | test | hearth t/s | llama.cpp t/s | ratio |")
print("|---|---|---|---|---|---|")
for (name, t), tests in rows.items():
    for test in ("pp128", "pp512", "tg64"):
        if test not in tests:
            continue
        avg, sd = tests[test]
        ref = base.get((name, t), {}).get(test, "-")
        m = re.match(r"([\d.]+)", ref)
        ratio = f"{avg / float(m.group(1)):.2f}" if m else "-"
        print(f"| {name} | {t} | {test} | {avg:.1f} ± {sd:.1f} | {ref} | {ratio} |")
EOF
