#!/usr/bin/python3
"""Unigram (SentencePiece) tokenizer fixtures for test_tokenizer_ugm.

Trains small SentencePiece unigram models on the repository's own text (plus a
few lines in other scripts), writes each as a vocabulary-only GGUF file laid
out the way llama.cpp's converter writes T5 / XLM-RoBERTa vocabularies
(tokenizer.ggml.model "t5", scores, types, add_space_prefix,
remove_extra_whitespaces, precompiled_charsmap), and writes the ids
SentencePiece itself gives for a list of inputs (with user-defined symbols cut
out first, as llama.cpp does: llama_ids), in the .inp/.out format of
../shared/conformance/tokenizer/.

Usage: ugm_fixture.py OUTDIR. Exits 77 when Debian's python3-sentencepiece is
not installed. Needs nothing else: the charsmap is read from the model
protobuf by the few lines of wire-format parsing below.
"""
import glob
import os
import re
import struct
import sys

try:
    import sentencepiece as spm
except ImportError:
    print("ugm_fixture: python3-sentencepiece is not installed")
    sys.exit(77)

SEP = "\n__ggml_vocab_test__\n"

# Inputs: spacing, the NFKC rules a charsmap carries (full-width forms,
# ligatures, odd spaces, compatibility characters), scripts with few or no
# pieces (unknown runs), user-defined symbols and digits.
INPUTS = [
    "Hello world",
    " Hello world",
    "Hello  world, two spaces",
    "   leading and trailing   ",
    "line one\nline two\n\n\tline four",
    "The quick brown fox jumps over the lazy dog.",
    "Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ １２３ and ﬁne ﬂow",
    "non\u00a0breaking\u2003em\u3000ideographic spaces",
    "caf\u00e9 vs cafe\u0301, \u212b and \u00c5, \u2460 \u00bd x\u00b2",
    "Grüße aus Köln — 10 € pro Person",
    "Привет, как дела?",
    "東京は日本の首都です。",
    "emoji 🦙🔥 and rare ꙮ ᚠᚢᚦ runes",
    "a<sep>b <sep> c@@d",
    "Numbers: 0 12 345 6789 3.14159 -42 1e10",
    "def add(a, b):\n    return a + b\n",
    "<div class=\"note\">Hi &amp; bye</div>",
    "",
    " ",
    "\u2581already escaped\u2581",
    "x",
]

EXTRA_TEXT = """Grüße aus Köln. Die Straße ist lang und schön.
Привет, как дела? Хорошо, спасибо. Москва — столица России.
東京は日本の首都です。日本語のテキストも少し入れておきます。
Le café est très bon. Où est la gare ? Ça va bien.
El niño come una manzana. ¿Dónde está la biblioteca?
"""


def corpus(src, path):
    text = [EXTRA_TEXT * 100]
    for name in sorted(glob.glob(os.path.join(src, "*.md")) +
                       glob.glob(os.path.join(src, "docs", "*.md"))):
        with open(name, encoding="utf-8") as f:
            text.append(f.read())
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(text))


# ---- protobuf wire format: just enough for ModelProto.normalizer_spec ----

def varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, i


def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        yield num, v


def normalizer_spec(model_bytes):
    spec = {"charsmap": b"", "add_dummy_prefix": True, "remove_extra_whitespaces": True}
    for num, v in fields(model_bytes):
        if num == 3:  # normalizer_spec
            for n2, v2 in fields(v):
                if n2 == 2:
                    spec["charsmap"] = bytes(v2)
                elif n2 == 3:
                    spec["add_dummy_prefix"] = bool(v2)
                elif n2 == 4:
                    spec["remove_extra_whitespaces"] = bool(v2)
    return spec


# ---- GGUF (version 3, no tensors) ----

def gguf_str(s):
    b = s if isinstance(s, bytes) else s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def write_gguf(path, kvs):
    out = [b"GGUF", struct.pack("<IQQ", 3, 0, len(kvs))]
    for key, kind, val in kvs:
        out.append(gguf_str(key))
        if kind == "str":
            out.append(struct.pack("<I", 8) + gguf_str(val))
        elif kind == "u32":
            out.append(struct.pack("<II", 4, val))
        elif kind == "bool":
            out.append(struct.pack("<IB", 7, 1 if val else 0))
        elif kind == "strs":
            out.append(struct.pack("<IIQ", 9, 8, len(val)) + b"".join(gguf_str(s) for s in val))
        elif kind == "f32s":
            out.append(struct.pack("<IIQ", 9, 6, len(val)) + struct.pack("<%df" % len(val), *val))
        elif kind == "i32s":
            out.append(struct.pack("<IIQ", 9, 5, len(val)) + struct.pack("<%di" % len(val), *val))
        elif kind == "u8s":
            out.append(struct.pack("<IIQ", 9, 0, len(val)) + val)
    with open(path, "wb") as f:
        f.write(b"".join(out))


def convert(sp, spec, path):
    """The vocabulary as llama.cpp's converter writes a T5 one (ids unchanged;
    types 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte)."""
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        t = 1
        if sp.is_unknown(i):
            t = 2
        elif sp.is_control(i):
            t = 3
        elif sp.is_unused(i):
            t = 5
        elif sp.is_byte(i):
            t = 6
        types.append(t)
    for sym in USER_DEFINED:
        types[sp.piece_to_id(sym)] = 4
    kvs = [
        ("general.architecture", "str", "t5"),
        ("tokenizer.ggml.model", "str", "t5"),
        ("tokenizer.ggml.pre", "str", "default"),
        ("tokenizer.ggml.tokens", "strs", tokens),
        ("tokenizer.ggml.scores", "f32s", scores),
        ("tokenizer.ggml.token_type", "i32s", types),
        ("tokenizer.ggml.add_space_prefix", "bool", spec["add_dummy_prefix"]),
        ("tokenizer.ggml.remove_extra_whitespaces", "bool", spec["remove_extra_whitespaces"]),
        ("tokenizer.ggml.unknown_token_id", "u32", sp.unk_id()),
        ("tokenizer.ggml.eos_token_id", "u32", sp.eos_id()),
        ("tokenizer.ggml.bos_token_id", "u32", sp.bos_id()),
    ]
    if spec["charsmap"]:
        kvs.append(("tokenizer.ggml.precompiled_charsmap", "u8s", spec["charsmap"]))
    write_gguf(path, kvs)


USER_DEFINED = ["<sep>", "@@"]


def llama_ids(sp, s):
    """The ids llama.cpp gives: it cuts user-defined tokens out of the raw
    text first and tokenizes each piece alone (so each gets its own space
    prefix), where SentencePiece keeps them inline; each piece's ids are
    SentencePiece's."""
    pat = "(" + "|".join(re.escape(u) for u in sorted(USER_DEFINED, key=len, reverse=True)) + ")"
    ids = []
    for part in re.split(pat, s):
        if part in USER_DEFINED:
            ids.append(sp.piece_to_id(part))
        elif part:
            ids += sp.encode(part)
    return ids

# name, vocabulary size, normalizer rule, add_dummy_prefix, remove_extra_whitespaces
MODELS = [
    ("nfkc", 1500, "nmt_nfkc", True, True),
    ("nfkc-cf", 1200, "nmt_nfkc_cf", True, True),
    ("identity", 800, "identity", False, False),
]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: ugm_fixture.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text = os.path.join(out, "corpus.txt")
    corpus(src, text)
    for name, size, rule, prefix, strip in MODELS:
        prefix_path = os.path.join(out, "ugm-" + name)
        spm.SentencePieceTrainer.train(
            input=text, model_prefix=prefix_path, model_type="unigram", vocab_size=size,
            normalization_rule_name=rule, add_dummy_prefix=prefix,
            remove_extra_whitespaces=strip, user_defined_symbols=USER_DEFINED,
            character_coverage=0.995, num_threads=1, minloglevel=2)
        with open(prefix_path + ".model", "rb") as f:
            model = f.read()
        sp = spm.SentencePieceProcessor(model_proto=model)
        convert(sp, normalizer_spec(model), prefix_path + ".gguf")
        with open(prefix_path + ".gguf.inp", "w", encoding="utf-8") as f:
            f.write("".join(s + SEP for s in INPUTS))
        with open(prefix_path + ".gguf.out", "w", encoding="utf-8") as f:
            for s in INPUTS:
                f.write("".join(" %d" % i for i in llama_ids(sp, s)) + "\n")
    print("ugm_fixture: %d vocabularies in %s" % (len(MODELS), out))


if __name__ == "__main__":
    main()
