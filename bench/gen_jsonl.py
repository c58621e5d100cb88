#!/usr/bin/env python3
"""Deterministic batch JSONL for the benchmarks.

Each line is a chat-completion batch request, as the batch engine receives them:

  {"custom_id":"request-N","method":"POST","url":"/v1/chat/completions",
   "body":{"model":"...","messages":[{"role":"system",...},{"role":"user",...}],
           "max_tokens":N[,"temperature":T]}}

about 300-600 bytes per line, mostly ASCII prose with some multi-byte UTF-8
(accents, CJK, Cyrillic, emoji) and JSON escapes (\\n, \\", \\t). The same seed
and size always give the same bytes. The file is exactly --bytes long: the last
line is padded (inside its user message) to land on the size.

  gen_jsonl.py --bytes 100000000 --seed 1 --out big.jsonl
  gen_jsonl.py --bytes 110100480 --minimal --out many-lines.jsonl   (~70-byte lines)
"""

import argparse
import json
import random
import sys

WORDS = (
    "the quick brown fox jumps over a lazy dog please summarize following article about "
    "climate policy and its effects on agriculture in Europe write short poem translate this "
    "sentence into French explain how transformers work with examples of code Python function "
    "returns list customer review product quality shipping was fast but packaging damaged rate "
    "from 1 to 5 JSON output only fields name score reason What is capital Australia Answer "
    "classify support ticket priority invoice refund account login error message stack trace "
    "database query latency report quarterly revenue growth compare two options recommend best"
).split()
UTF8_WORDS = ["café", "naïve", "über", "Straße", "—", "日本語", "привет", "😀", "€42", "résumé",
              "Zürich", "São Paulo", "东京", "Ελλάδα", "½", "→"]
ESCAPES = ["\n", '"', "\t", "\\", "\n\n"]
MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1-nano"]
SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are a careful classifier. Answer with one label only.",
    "You translate text faithfully and keep the formatting.",
    "You write concise summaries for busy readers.",
    "Réponds en français, s'il te plaît.",
]


def sentence(rng):
    n = rng.randint(4, 18)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.06:
            out.append(rng.choice(UTF8_WORDS))
        elif r < 0.08:
            out.append(rng.choice(ESCAPES))
        else:
            out.append(rng.choice(WORDS))
    s = " ".join(out)
    return s[0].upper() + s[1:] + rng.choice([".", "?", "!", ":"])


def line(rng, pool, n, pad=0):
    """One request line (without the newline) of about 300-600 bytes; pad adds spaces."""
    target = rng.randint(70, 330)  # bytes of user message text
    parts, size = [], 0
    while size < target:
        s = pool[rng.randrange(len(pool))]
        parts.append(s)
        size += len(s.encode("utf-8")) + 1
    body = {
        "model": MODELS[n % 7 % len(MODELS)],
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPTS[rng.randrange(len(SYSTEM_PROMPTS))]},
            {"role": "user", "content": " ".join(parts) + " " * pad},
        ],
        "max_tokens": rng.randint(16, 4096),
    }
    if rng.random() < 0.5:
        body["temperature"] = round(rng.random(), 2)
    obj = {"custom_id": "request-%d" % n, "method": "POST", "url": "/v1/chat/completions",
           "body": body}
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def generate(out, total, seed):
    rng = random.Random(seed)
    pool = [sentence(rng) for _ in range(4096)]
    written, n, buf = 0, 0, []
    # Stop with room for one padded last line (regular lines are < 1 KiB).
    while total - written > 2048:
        data = (line(rng, pool, n) + "\n").encode("utf-8")
        buf.append(data)
        written += len(data)
        n += 1
        if len(buf) >= 4096:
            out.write(b"".join(buf))
            buf = []
    # The last line: lands exactly on total.
    state = rng.getstate()
    base = (line(rng, pool, n) + "\n").encode("utf-8")
    pad = total - written - len(base)
    if pad < 0:
        raise SystemExit("gen_jsonl: size %d too small" % total)
    rng.setstate(state)
    last = (line(rng, pool, n, pad=pad) + "\n").encode("utf-8")
    assert written + len(last) == total, (written, len(last), total)
    buf.append(last)
    out.write(b"".join(buf))
    return n + 1


def generate_minimal(out, total):
    """The worst case for the validator's custom_id set: the shortest batch lines
    (about 70 bytes), so the most lines a file of this size can hold."""
    n, written, buf = 0, 0, []
    while True:
        data = b'{"custom_id":"%x","method":"POST","url":"/v1/embeddings","body":{}}\n' % n
        if written + len(data) > total - 256:
            break
        buf.append(data)
        written += len(data)
        n += 1
        if len(buf) >= 16384:
            out.write(b"".join(buf))
            buf = []
    head = b'{"custom_id":"%x","method":"POST","url":"/v1/embeddings","body":{"pad":"' % n
    tail = b'"}}\n'
    buf.append(head + b"x" * (total - written - len(head) - len(tail)) + tail)
    out.write(b"".join(buf))
    return n + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bytes", type=int, required=True, help="exact size of the file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minimal", action="store_true",
                    help="shortest possible batch lines (embeddings, empty body) instead")
    args = ap.parse_args()
    with open(args.out, "wb") as f:
        lines = (generate_minimal(f, args.bytes) if args.minimal
                 else generate(f, args.bytes, args.seed))
    print("%s: %d bytes, %d lines, %.0f bytes per line" % (args.out, args.bytes, lines,
                                                             args.bytes / lines), file=sys.stderr)


if __name__ == "__main__":
    main()
