#!/usr/bin/env python3
"""tune_intent.py - does `hearth tune` teach a model something it generalises?

Banking77 (../shared/data/intent/banking77/train.csv, real support queries with
77 intent labels) as a generation task: the prompt is the query, the answer its
label in words. The rows are split by a hash of the text into a training part and a
held-out part; `hearth tune` trains an adapter on the first, and `hearth chat`
(greedy) answers every held-out query with and without it. Prints the exact-
match accuracy of both (the reply cut at the first character no label has) and the
majority-label baseline. Nothing is copied from
../shared into the repository: the JSONL files go to a scratch directory.

usage: tune_intent.py HEARTH MODEL [--train 2000] [--eval 300] [--epochs 3]
                      [--lr 2e-3] [--rank 8] [--data CSV] [--threads 2]
"""
import argparse
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter


def split(rows, n_train, n_eval):
    """Orders rows by a hash of their text: the first n_train train, the next n_eval evaluate."""
    keyed = sorted(rows, key=lambda r: hashlib.sha256(r[0].encode()).hexdigest())
    return keyed[:n_train], keyed[n_train:n_train + n_eval]


def reply(hearth, model, lora, text, threads):
    cmd = [hearth, "chat", "-m", model, "--temp", "0", "-n", "24", "-t", str(threads)]
    if lora:
        cmd += ["--lora", lora]
    out = subprocess.run(cmd, input=text + "\n", capture_output=True, text=True, check=True)
    # cut at the first character no label has: a model whose end-of-turn token was never
    # trained (stories260K's </s>) cannot learn to stop, as LoRA leaves output rows alone
    return re.match(r"[A-Za-z0-9 ]*", out.stdout).group(0).strip()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser()
    p.add_argument("hearth")
    p.add_argument("model")
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--eval", type=int, default=300)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", default="2e-3")
    p.add_argument("--rank", default="8")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default=os.path.join(
        here, "..", "..", "shared", "data", "intent", "banking77", "train.csv"))
    a = p.parse_args()
    with open(a.data, newline="", encoding="utf-8") as f:
        # labels as words ("card arrival"): small vocabularies spell "_" as a byte token the
        # model has never produced, whose output row LoRA does not train
        rows = [(r["text"].strip(), r["category"].replace("_", " ")) for r in csv.DictReader(f)]
    train, held = split(rows, a.train, a.eval)
    with tempfile.TemporaryDirectory() as tmp:
        data, lora = os.path.join(tmp, "train.jsonl"), os.path.join(tmp, "intent.gguf")
        with open(data, "w", encoding="utf-8") as f:
            for text, label in train:
                f.write(json.dumps({"prompt": text, "completion": label}) + "\n")
        subprocess.run([a.hearth, "tune", "-m", a.model, "--data", data, "-o", lora,
                        "--epochs", str(a.epochs), "--lr", a.lr, "--rank", a.rank,
                        "--val-share", "0.05", "-t", str(a.threads)], check=True,
                       stdout=sys.stderr)
        right = {"base": 0, "tuned": 0}
        for text, label in held:
            right["base"] += reply(a.hearth, a.model, None, text, a.threads) == label
            right["tuned"] += reply(a.hearth, a.model, lora, text, a.threads) == label
    majority = Counter(label for _, label in train).most_common(1)[0]
    n = len(held)
    print(f"banking77: {len(train)} training queries, {n} held out, {a.epochs} epochs, "
          f"rank {a.rank}, lr {a.lr}")
    print(f"exact-match accuracy held out: base {right['base'] / n:.3f}, "
          f"tuned {right['tuned'] / n:.3f}; always '{majority[0]}': "
          f"{sum(label == majority[0] for _, label in held) / n:.3f}")


if __name__ == "__main__":
    main()
