"""What every tokenizer shares: ``vocab_size``, and saving to / loading from JSON files.

A file holds one JSON object: ``{"type": "<class name>", "version": 1, ...}`` plus the
fields of that class (``_to_config`` / ``_from_config``). JSON and not pickle: loading a
tokenizer someone sent you runs no code, and the file is readable in any editor.
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["Tokenizer", "TokenizerFileError"]

FORMAT_VERSION = 1


class TokenizerFileError(ValueError):
    """A tokenizer file that cannot be loaded: not JSON, another type, or bad contents.
    The message names the file and what is wrong with it."""


class Tokenizer:
    """Base class: ``encode(str) -> list[int]``, ``decode(list[int]) -> str``,
    ``vocab_size``, ``save(path)`` and ``load(path)``."""

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids) -> str:
        raise NotImplementedError

    def _to_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def _from_config(cls, config: dict) -> Tokenizer:
        raise NotImplementedError

    def save(self, path) -> None:
        """Write the tokenizer to ``path`` as JSON (UTF-8)."""
        config = {"type": type(self).__name__, "version": FORMAT_VERSION, **self._to_config()}
        Path(path).write_text(json.dumps(config) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path) -> Tokenizer:
        """The tokenizer saved at ``path`` by ``save``. Raises ``TokenizerFileError`` naming
        the file when it is not valid JSON, holds another tokenizer type or version, or has
        malformed fields."""
        try:
            config = json.loads(Path(path).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise TokenizerFileError(f"{path}: not a tokenizer file (invalid JSON: {error})") \
                from error
        if not isinstance(config, dict):
            raise TokenizerFileError(f"{path}: expected a JSON object, got "
                                     f"{type(config).__name__}")
        if config.get("type") != cls.__name__:
            raise TokenizerFileError(f"{path}: holds type {config.get('type')!r}, "
                                     f"not {cls.__name__!r}")
        if config.get("version") != FORMAT_VERSION:
            raise TokenizerFileError(f"{path}: format version {config.get('version')!r} is not "
                                     f"supported (this tinytorch reads version {FORMAT_VERSION})")
        try:
            return cls._from_config(config)
        except (TypeError, ValueError, KeyError) as error:
            raise TokenizerFileError(f"{path}: {error}") from error

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def field(config: dict, name: str, kinds: tuple, what: str):
    """``config[name]``, which must be one of the types ``kinds``; else a ValueError."""
    if name not in config:
        raise ValueError(f"missing field {name!r}")
    value = config[name]
    if not isinstance(value, kinds):
        raise ValueError(f"field {name!r} must be {what}, got {type(value).__name__}")
    return value


def check_ids(ids, vocab_size: int) -> list[int]:
    """``ids`` as a list of Python ints, each in ``0 .. vocab_size - 1``; otherwise an error
    naming the first bad id, its position and the vocabulary size."""
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"decode() takes a sequence of int ids, got {type(ids).__name__}")
    out = []
    for position, token in enumerate(ids):
        try:
            token = int(token.__index__())  # ints and numpy integers; not floats
        except (AttributeError, TypeError):
            raise TypeError(f"id at position {position} is {token!r} "
                            f"({type(token).__name__}), not an int") from None
        if not 0 <= token < vocab_size:
            raise ValueError(f"id {token} at position {position} is outside the vocabulary "
                             f"(ids 0..{vocab_size - 1})")
        out.append(token)
    return out
