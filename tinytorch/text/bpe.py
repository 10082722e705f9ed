"""Byte-level byte-pair encoding (BPE), as in GPT-2: any string in, ids out, and back.

A string is encoded to UTF-8 bytes, so ids 0-255 are the 256 possible bytes and nothing is
ever "unknown". Training repeatedly merges the most frequent adjacent pair of ids into a new
id (256, 257, ...); encoding replays those merges in the order they were learned.
"""
from __future__ import annotations

import functools
import heapq
import numbers

from ..checks import is_int
from .base import Tokenizer, check_ids, field
from .bpe_train import learn_merges

__all__ = ["GPT2_SPLIT_PATTERN", "BPETokenizer", "pair_counts", "merge_pair", "split_text"]

# GPT-2's pre-tokenizer: English contractions, runs of letters, of digits, of other symbols
# (each optionally after one space), and runs of whitespace. Needs the ``regex`` package
# (``\p{L}`` is a Unicode letter, ``\p{N}`` a number).
GPT2_SPLIT_PATTERN = (r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"""
                      r"""|\s+(?!\S)|\s+""")


def pair_counts(ids, counts: dict | None = None) -> dict:
    """How often each adjacent pair occurs in ``ids``: ``{(a, b): count}``.

    Overlaps count: ``[1, 1, 1]`` holds ``(1, 1)`` twice. The dict lists the pairs in order
    of first occurrence, so ``max(counts, key=counts.get)`` breaks ties towards the pair
    that comes first. Pass ``counts`` to add to an existing dict (one text in several chunks).
    """
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge_pair(ids, pair: tuple, new_id: int) -> list[int]:
    """``ids`` with every occurrence of ``pair`` replaced by ``new_id``, scanning left to
    right: ``merge_pair([1, 1, 1], (1, 1), 9) == [9, 1]``."""
    out, i, n = [], 0, len(ids)
    a, b = pair
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


@functools.lru_cache(maxsize=8)
def _compile(pattern: str):
    try:
        import regex
    except ImportError as error:
        raise ImportError("a BPE split pattern needs the 'regex' package: pip install regex") \
            from error
    return regex.compile(pattern)


def split_text(text: str, pattern: str | None = None) -> list[str]:
    """``text`` cut into the chunks that BPE merges inside: the whole text when ``pattern``
    is None, else the matches of the regular expression ``pattern`` (``regex`` syntax).
    Text between two matches becomes a chunk too, so ``"".join(chunks) == text`` always."""
    if pattern is None:
        return [text] if text else []
    chunks, end = [], 0
    for match in _compile(pattern).finditer(text):
        if match.start() > end:
            chunks.append(text[end:match.start()])
        if match.end() > match.start():
            chunks.append(match.group())
        end = max(end, match.end())
    if end < len(text):
        chunks.append(text[end:])
    return chunks


def _utf8(text) -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:  # a lone surrogate such as "\ud800"
        raise ValueError(f"character {text[error.start]!r} at position {error.start} is a lone "
                         f"surrogate, which UTF-8 cannot encode") from None


class BPETokenizer(Tokenizer):
    """Byte-level BPE. ``BPETokenizer().train(text, vocab_size)`` learns the merges.

    Ids 0-255 are bytes; merge k turns the k-th pair of ``merges`` into id ``256 + k``, so
    ``vocab_size == 256 + number of merges``. ``decode(encode(s)) == s`` for every string
    (newlines, runs of spaces, tabs, emoji, combining characters): nothing is normalised
    and every byte has an id. A string with a lone surrogate (not valid Unicode) cannot be
    encoded and raises ``ValueError``.

    ``decode`` of ids that do not form whole UTF-8 characters (e.g. the first byte of a
    two-byte character alone) gives U+FFFD, the replacement character, for the broken
    bytes: ``errors="replace"``, as tiktoken and minbpe do.

    ``BPETokenizer(merges, pattern)`` rebuilds a tokenizer from learned merges (a list of
    pairs in the order learned), e.g. the first k merges of a larger one.
    """

    def __init__(self, merges=(), pattern: str | None = None):
        if pattern is not None and not isinstance(pattern, str):
            raise TypeError(f"pattern must be a str or None, got {type(pattern).__name__}")
        self.pattern = pattern
        self._set_merges(merges)

    def _set_merges(self, merges) -> None:
        table: dict[tuple[int, int], int] = {}
        vocab = [bytes([i]) for i in range(256)]
        for k, pair in enumerate(merges):
            new_id = 256 + k
            if (not isinstance(pair, (tuple, list)) or len(pair) != 2
                    or not all(isinstance(x, numbers.Integral) and not isinstance(x, bool)
                               for x in pair)):
                raise ValueError(f"merge {k} must be a pair of int ids, got {pair!r}")
            a, b = int(pair[0]), int(pair[1])
            if not (0 <= a < new_id and 0 <= b < new_id):
                raise ValueError(f"merge {k} ({a}, {b}) uses an id outside 0..{new_id - 1}, "
                                 f"the ids that exist before it")
            if (a, b) in table:
                raise ValueError(f"merge {k} ({a}, {b}) repeats merge {table[(a, b)] - 256}")
            table[(a, b)] = new_id
            vocab.append(vocab[a] + vocab[b])
        self.merges = table      # (a, b) -> new id, in the order learned
        self.vocab = vocab       # id -> the bytes it stands for

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def train(self, text: str, vocab_size: int, pattern: str | None = None) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text``, replacing any learned before.

        Each merge joins the most frequent adjacent pair (ties: the pair that occurs first
        in the text). With ``pattern`` (e.g. ``GPT2_SPLIT_PATTERN``) the text is first cut
        into chunks (``split_text``) and no merge crosses a chunk, so tokens stay inside
        words. Stops early, with a smaller ``vocab_size``, when no adjacent pair is left.
        Returns ``self``.
        """
        if not is_int(vocab_size):
            raise TypeError(f"vocab_size must be an int, got {vocab_size!r} "
                            f"({type(vocab_size).__name__})")
        if vocab_size < 256:
            raise ValueError(f"vocab_size must be at least 256 (one id per byte), "
                             f"got {vocab_size}")
        _utf8(text)
        if pattern is not None and not isinstance(pattern, str):
            raise TypeError(f"pattern must be a str or None, got {type(pattern).__name__}")
        chunks = [chunk.encode("utf-8") for chunk in split_text(text, pattern)]
        self.pattern = pattern
        self._set_merges(learn_merges(chunks, int(vocab_size) - 256))
        return self

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``: its UTF-8 bytes, with the merges applied in the order
        learned (within each chunk of ``pattern``, when there is one)."""
        _utf8(text)
        ids, cache = [], {}
        for chunk in split_text(text, self.pattern):
            if chunk not in cache:  # words repeat: encode each distinct chunk once
                cache[chunk] = self._encode_chunk(chunk.encode("utf-8"))
            ids.extend(cache[chunk])
        return ids

    def _encode_chunk(self, data: bytes) -> list[int]:
        """The ids of the bytes ``data`` after applying every merge, in the order learned.

        Replaying merge 0 on the whole sequence, then merge 1, ... costs O(merges × length).
        Instead a heap holds (merge id, position) for every adjacent pair that is a merge:
        popping the smallest gives the earliest-learned merge, leftmost first, which is
        exactly the order of the replay, and only the two pairs around each merge change.
        """
        tokens = list(data)
        n = len(tokens)
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        if n:
            nxt[-1] = -1
        merges = self.merges
        heap = [(merges[pair], i) for i, pair in enumerate(zip(tokens, tokens[1:]))
                if pair in merges]
        heapq.heapify(heap)
        while heap:
            new, i = heapq.heappop(heap)
            j = nxt[i]
            # Stale entry: position i was absorbed, or its pair changed since it was pushed.
            if j < 0 or tokens[i] < 0 or merges.get((tokens[i], tokens[j])) != new:
                continue
            q = nxt[j]
            tokens[i], tokens[j] = new, -1
            nxt[i] = q
            if q >= 0:
                prv[q] = i
                right = merges.get((new, tokens[q]))
                if right is not None:
                    heapq.heappush(heap, (right, i))
            p = prv[i]
            if p >= 0:
                left = merges.get((tokens[p], new))
                if left is not None:
                    heapq.heappush(heap, (left, p))
        return [t for t in tokens if t >= 0]

    def decode(self, ids) -> str:
        """The string of ``ids``: their bytes joined and decoded as UTF-8, with
        ``errors="replace"`` (bytes that form no whole character become U+FFFD).
        An id outside 0..vocab_size-1 raises an error naming it and its position."""
        vocab = self.vocab
        data = b"".join([vocab[i] for i in check_ids(ids, len(vocab))])
        return data.decode("utf-8", errors="replace")

    def _to_config(self) -> dict:
        return {"pattern": self.pattern, "merges": [list(pair) for pair in self.merges]}

    @classmethod
    def _from_config(cls, config: dict) -> BPETokenizer:
        pattern = field(config, "pattern", (str, type(None)), "a string or null")
        return cls(field(config, "merges", (list,), "a list of [a, b] pairs"), pattern)
