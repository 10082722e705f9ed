"""CharTokenizer: one id per character of a fixed alphabet."""
from __future__ import annotations

from .base import Tokenizer, check_ids, field

__all__ = ["CharTokenizer"]


class CharTokenizer(Tokenizer):
    """Character ``chars[i]`` has id ``i``.

    ``CharTokenizer.from_text(text)`` takes the sorted set of characters of ``text``, so the
    same text always gives the same ids. A character outside the alphabet cannot be encoded:
    ``encode`` raises a ``ValueError`` naming it and its position (there is no "unknown" id).
    """

    def __init__(self, chars):
        chars = list(chars)
        for position, char in enumerate(chars):
            if not isinstance(char, str) or len(char) != 1:
                raise ValueError(f"chars[{position}] = {char!r} is not a single character")
        if len(set(chars)) != len(chars):
            repeated = sorted({c for c in chars if chars.count(c) > 1})
            raise ValueError(f"chars must be distinct; repeated: {repeated!r}")
        if not chars:
            raise ValueError("a CharTokenizer needs at least one character")
        self.chars = chars
        self._ids = {char: i for i, char in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer of the characters of ``text``, ids in sorted (code point) order."""
        if not isinstance(text, str):
            raise TypeError(f"from_text() takes a str, got {type(text).__name__}")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """The id of every character of ``text``, in order.

        A character that is not in ``self.chars`` raises ``ValueError`` naming the
        character (its ``repr``) and its position in ``text``.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, got {type(text).__name__}")
        ids = self._ids
        try:
            return [ids[char] for char in text]
        except KeyError:
            position = next(i for i, char in enumerate(text) if char not in ids)
            raise ValueError(f"character {text[position]!r} at position {position} is not in "
                             f"the tokenizer's {len(ids)} characters") from None

    def decode(self, ids) -> str:
        """The characters of ``ids`` joined; an id outside 0..vocab_size-1 raises an error
        naming it and its position."""
        chars = self.chars
        return "".join([chars[i] for i in check_ids(ids, len(chars))])

    def _to_config(self) -> dict:
        return {"chars": self.chars}

    @classmethod
    def _from_config(cls, config: dict) -> CharTokenizer:
        return cls(field(config, "chars", (list,), "a list of characters"))
