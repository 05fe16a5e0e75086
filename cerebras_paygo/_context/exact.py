"""Exact token counters: the optional tokenizer's vocabularies, a user's ``tokenizer.json``, or a callable.

``pip install 'cerebras-paygo[tokenizer]'`` installs ``quicktok-v1``, whose wheel ships the
vocabularies (o200k_harmony for gpt-oss, qwen3, ...): nothing is downloaded at run time, so it
works in offline CI. It is imported lazily, the first time a vocabulary is asked for, and picked
up automatically when installed. ``CEREBRAS_PAYGO_TOKENIZER=off`` (or ``TokenEstimator(vocabularies=False)``)
turns it off: the heuristic counts instead.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

from cerebras_paygo.errors import ConfigurationError

__all__ = ["TokenCounter", "VocabularyCounter", "tokenizer_file_counter", "vocabulary_counter"]

TokenCounter = Callable[[str], int]


class VocabularyCounter(Protocol):
    """An exact counter of one vocabulary: ordinary text, and text with special tokens."""

    name: str

    def __call__(self, text: str) -> int: ...

    def special(self, text: str) -> int:
        """Tokens of ``text`` where special-token strings are their single tokens."""
        ...

    def ids(self, text: str) -> list[int]:
        """The token ids of ordinary ``text``."""
        ...


class _QuicktokCounter:
    __slots__ = ("_encoding", "name")

    def __init__(self, name: str, encoding: Any) -> None:
        self.name = name
        self._encoding = encoding

    def __call__(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text)) if text else 0

    def special(self, text: str) -> int:
        return len(self._encoding.encode_with_special(text)) if text else 0

    def ids(self, text: str) -> list[int]:
        return list(self._encoding.encode_ordinary(text)) if text else []


_loaded: dict[str, VocabularyCounter | None] = {}
_lock = threading.Lock()


def enabled() -> bool:
    """Whether vocabularies may be used (``CEREBRAS_PAYGO_TOKENIZER`` is not ``off``/``0``/``false``)."""
    return os.environ.get("CEREBRAS_PAYGO_TOKENIZER", "").strip().lower() not in ("off", "0", "false", "no")


def vocabulary_counter(name: str | None) -> VocabularyCounter | None:
    """The exact counter of vocabulary ``name`` from the optional tokenizer, or None when not installed."""
    if not name or not enabled():
        return None
    if name in _loaded:
        return _loaded[name]
    with _lock:
        if name not in _loaded:
            counter: VocabularyCounter | None
            try:
                quicktok = importlib.import_module("quicktok")
                counter = _QuicktokCounter(name, quicktok.get_encoding(name))
            except Exception:  # not installed, or no such vocabulary in this version
                counter = None
            _loaded[name] = counter
    return _loaded[name]


def tokenizer_file_counter(path: str | os.PathLike[str]) -> TokenCounter:
    """A counter from a ``tokenizer.json`` the user has (needs the optional ``tokenizers`` package)."""
    location = os.fspath(path)
    if not os.path.isfile(location):
        raise ConfigurationError(f"tokenizer file {location!r} does not exist")
    try:
        tokenizers = importlib.import_module("tokenizers")
    except ImportError as exc:
        raise ConfigurationError(
            "counting tokens with a tokenizer.json file needs the optional 'tokenizers' package: "
            "pip install tokenizers (or pass counter=<callable str -> int>, or no counter for the built-in estimate)"
        ) from exc
    try:
        tokenizer = tokenizers.Tokenizer.from_file(location)
    except Exception as exc:  # the Rust binding raises its own exception types
        raise ConfigurationError(f"cannot load tokenizer file {location!r}: {exc}") from exc

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count
