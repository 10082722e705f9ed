"""How fast does BPETokenizer train? Vocabulary 512 on 200 kB of Shakespeare, on one core.

    python benchmarks/bench_bpe.py                 # 200 kB, vocab 512, median of 3
    python benchmarks/bench_bpe.py --chars 400000  # more text

The text is the start of ``tinytorch.datasets.load_shakespeare().train_text``. The trainer
keeps the pair counts up to date merge after merge (``tinytorch.text.learn_merges``); the
naive trainer beside it recounts every pair of the whole text before every merge, with the
package's own ``pair_counts`` and ``merge_pair``. It is far slower, so it runs on a smaller
slice, and the fast trainer is timed on that slice too for a side-by-side ratio.

First comes the oracle: on the small slice, both trainers must learn the same merges, in
the same order (with and without the GPT-2 split pattern); a mismatch exits with status 1.
The timings only report (exit 0), whatever they are. Python runs on one core: nothing
here is multi-threaded.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import tinytorch as tt
from tinytorch.text import GPT2_SPLIT_PATTERN, BPETokenizer, merge_pair, pair_counts, split_text

TARGET_SECONDS = 10.0  # vocabulary 512 on 200 kB (issue 10)


def naive_merges(text: str, vocab_size: int, pattern: str | None = None) -> list:
    """BPE the obvious way: recount all pairs, merge the most frequent, repeat."""
    chunks = [list(chunk.encode("utf-8")) for chunk in split_text(text, pattern)]
    merges = []
    while 256 + len(merges) < vocab_size:
        counts = {}
        for chunk in chunks:
            pair_counts(chunk, counts)  # dict order = first occurrence: max() breaks ties
        if not counts:
            break
        pair = max(counts, key=counts.get)
        chunks = [merge_pair(chunk, pair, 256 + len(merges)) for chunk in chunks]
        merges.append(pair)
    return merges


def median_seconds(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def check_oracle(text: str, vocab_size: int) -> bool:
    ok = True
    for pattern in (None, GPT2_SPLIT_PATTERN):
        fast = list(BPETokenizer().train(text, vocab_size, pattern=pattern).merges)
        slow = naive_merges(text, vocab_size, pattern)
        same = fast == slow
        ok &= same
        print(f"oracle ({'GPT-2 pattern' if pattern else 'no pattern'}, {len(text):,} chars, "
              f"vocab {vocab_size}): {'same merges' if same else 'MISMATCH'}")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", type=int, default=200_000, help="characters of training text")
    parser.add_argument("--vocab", type=int, default=512, help="vocabulary size")
    parser.add_argument("--repeats", type=int, default=3, help="timings: the median of this many")
    parser.add_argument("--naive-chars", type=int, default=50_000,
                        help="characters for the naive trainer (it is slow)")
    args = parser.parse_args(argv)

    print(f"python {platform.python_version()} | tinytorch {tt.__version__} | "
          f"load average {os.getloadavg()[0]:.2f}")
    corpus = tt.datasets.load_shakespeare().train_text
    text, small = corpus[:args.chars], corpus[:args.naive_chars]
    if not check_oracle(small[:5_000], 300):
        return 1

    rows = []
    for pattern in (None, GPT2_SPLIT_PATTERN):
        name = "GPT-2 pattern" if pattern else "no pattern"
        seconds = median_seconds(
            lambda pattern=pattern: BPETokenizer().train(text, args.vocab, pattern=pattern),
            args.repeats)
        tokenizer = BPETokenizer().train(text, args.vocab, pattern=pattern)
        encode = median_seconds(lambda tokenizer=tokenizer: tokenizer.encode(text), args.repeats)
        ratio = len(text) / len(tokenizer.encode(text))
        met = "yes" if seconds <= TARGET_SECONDS else "NO"
        rows.append((f"train, {name}", len(text), seconds, met, f"{ratio:.2f}"))
        rows.append((f"encode, {name}", len(text), encode, "", ""))

    fast_small = median_seconds(lambda: BPETokenizer().train(small, args.vocab), args.repeats)
    naive_small = median_seconds(lambda: naive_merges(small, args.vocab), 1)
    rows.append(("train, no pattern (small slice)", len(small), fast_small, "", ""))
    rows.append(("naive recount, no pattern (small slice)", len(small), naive_small, "", ""))

    print(f"\nvocabulary {args.vocab}; seconds are the median of {args.repeats} "
          f"(naive: one run); target: training in <= {TARGET_SECONDS:.0f} s "
          f"(for vocabulary 512 on 200 kB)\n")
    print(f"{'case':<42} {'chars':>9} {'seconds':>9} {'target met':>11} {'chars/token':>12}")
    for case, chars, secs, met, ratio in rows:
        print(f"{case:<42} {chars:>9,} {secs:>9.3f} {met:>11} {ratio:>12}")
    print(f"\nnaive ÷ incremental on the same {len(small):,} characters: "
          f"{naive_small / fast_small:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
