"""Automatic prefix caching as Cerebras reports it: per org, in blocks of 128 prompt tokens.

A request's ``cached_tokens`` is the longest prefix (a multiple of 128 tokens, never the whole
prompt) that an earlier request of the same org and model sent within the TTL.
"""

from __future__ import annotations

import hashlib

__all__ = ["BLOCK", "PromptCache"]

BLOCK = 128


class PromptCache:
    def __init__(self, ttl_s: float = 300.0) -> None:
        self.ttl_s = ttl_s
        self._seen: dict[tuple[str, str], dict[bytes, float]] = {}

    def lookup_and_store(self, org: str, model: str, pieces: list[str], now: float) -> int:
        """Cached tokens for this prompt; then remember its blocks."""
        entries = self._seen.setdefault((org, model), {})
        if len(entries) > 50_000:
            for key in [k for k, expiry in entries.items() if expiry <= now]:
                del entries[key]
        digest = hashlib.blake2b(digest_size=16)
        cached = 0
        still_hit = True
        usable = len(pieces) - 1
        for end in range(BLOCK, usable + 1, BLOCK):
            for piece in pieces[end - BLOCK : end]:
                digest.update(piece.encode("utf-8", "surrogatepass"))
                digest.update(b"\x00")
            key = digest.copy().digest()
            if still_hit and entries.get(key, -1.0) > now:
                cached = end
            else:
                still_hit = False
            entries[key] = now + self.ttl_s
        return cached
