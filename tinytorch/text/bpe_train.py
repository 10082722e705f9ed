"""Learning BPE merges fast: pair counts kept up to date instead of recounted.

The naive trainer recounts every adjacent pair of the whole text before each merge:
O(text length) per merge. Here the text is a doubly linked list of tokens, and ``where``
maps every adjacent pair to the set of positions where it starts. A merge visits only the
occurrences of the merged pair and updates the few pairs around each of them, so the work
of a merge is proportional to how often its pair occurs, not to the length of the text.
"""
from __future__ import annotations

__all__ = ["learn_merges"]

DEAD = -1  # the token of a position absorbed into its left neighbour by a merge


def _add(where: dict, pair: tuple, position: int) -> None:
    where.setdefault(pair, set()).add(position)


def _remove(where: dict, pair: tuple, position: int) -> None:
    positions = where.get(pair)
    if positions is not None:
        positions.discard(position)
        if not positions:
            del where[pair]


def _best_pair(where: dict) -> tuple:
    """The most frequent pair; among equally frequent ones, the one that occurs first.

    A pair's count is the number of positions where it starts (overlaps included: "aaa"
    holds the pair (a, a) twice), and positions increase along the text.
    """
    top = max(map(len, where.values()))
    tied = [pair for pair, positions in where.items() if len(positions) == top]
    return tied[0] if len(tied) == 1 else min(tied, key=lambda pair: min(where[pair]))


def learn_merges(chunks, num_merges: int) -> list[tuple[int, int]]:
    """The first ``num_merges`` BPE merges of ``chunks`` (a sequence of ``bytes``).

    Each step merges the most frequent adjacent pair of ids, ties going to the pair that
    occurs first in the text (the chunks in order), into the next id (256, 257, ...):
    every occurrence, left to right, so in "aaa" only the first two ids merge. Pairs never
    span two chunks. Returns the merged pairs in the order learned; fewer than
    ``num_merges`` when no adjacent pair is left.

    Exactly what recounting the pairs of the whole text before every merge would give,
    in time proportional to the number of merged occurrences instead.
    """
    # The text as a linked list over byte positions: token i is followed by nxt[i] and
    # preceded by prv[i]; -1 marks the edge of a chunk, which no merge crosses.
    tokens, nxt, prv = [], [], []
    for chunk in chunks:
        start, n = len(tokens), len(chunk)
        if n == 0:
            continue
        tokens.extend(chunk)
        nxt.extend(range(start + 1, start + n + 1))
        nxt[-1] = -1
        prv.append(-1)
        prv.extend(range(start, start + n - 1))

    where: dict[tuple[int, int], set[int]] = {}
    for i, j in enumerate(nxt):
        if j >= 0:
            _add(where, (tokens[i], tokens[j]), i)

    merges = []
    while len(merges) < num_merges and where:
        pair = _best_pair(where)
        a, b = pair
        new = 256 + len(merges)
        for i in sorted(where.pop(pair)):  # left to right
            j = nxt[i]
            # An overlapping occurrence ("aaa") may have been consumed a moment ago.
            if tokens[i] != a or j < 0 or tokens[j] != b:
                continue
            p, q = prv[i], nxt[j]
            # Unlink the pairs around the occurrence: (token before, a) and (b, token after).
            if p >= 0:
                _remove(where, (tokens[p], a), p)
            if q >= 0:
                _remove(where, (b, tokens[q]), j)
            # Merge: position i now holds the new id, position j leaves the list.
            tokens[i], tokens[j] = new, DEAD
            nxt[i] = q
            if q >= 0:
                prv[q] = i
            # Link the new pairs: (token before, new) and (new, token after).
            if p >= 0:
                _add(where, (tokens[p], new), p)
            if q >= 0:
                _add(where, (new, tokens[q]), i)
        merges.append(pair)
    return merges
