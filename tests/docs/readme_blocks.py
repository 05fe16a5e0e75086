"""The ```python blocks of README.md: where they are, what heading they sit under, how they are marked.

A block runs as written. The rare one that cannot is marked by an HTML comment on the line right
before its fence:

- ``<!-- snippet: skip <reason> -->``: not run (a fragment, or it needs what a test cannot have);
- ``<!-- snippet: needs-redis -->``: run only when ``CEREBRAS_PAYGO_REDIS_URL`` names a Redis.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
README = ROOT / "README.md"

MARKS = ("skip", "needs-redis")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")
_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
_MARK = re.compile(r"^\s*<!--\s*snippet:\s*(?P<kind>[\w-]+)\s*(?P<reason>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    heading: str
    index: int  # 1-based, among the python blocks under the same heading
    line: int  # 1-based line of README.md where the code starts (the line after the fence)
    code: str  # dedented
    mark: str | None = None
    reason: str = ""

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-") or "top"
        return f"{slug}-{self.index}"

    def padded(self) -> str:
        """The code with blank lines before it, so line numbers in tracebacks are README.md's."""
        return "\n" * (self.line - 1) + self.code


def python_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks: list[Block] = []
    per_heading: dict[str, int] = {}
    heading = ""
    previous = ""  # the last non-blank line outside a fence
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence is None:
            title = _HEADING.match(line)
            if title is not None:
                heading = title["title"]
            if line.strip():
                previous = line
            i += 1
            continue
        opener, indent = fence["fence"], fence["indent"]
        end = i + 1
        while end < len(lines) and not _closes(lines[end], opener):
            end += 1
        if fence["info"].lower() in ("python", "py"):
            body = "\n".join(_unindent(raw, indent) for raw in lines[i + 1 : end])
            mark = _MARK.match(previous)
            per_heading[heading] = per_heading.get(heading, 0) + 1
            blocks.append(
                Block(
                    heading=heading,
                    index=per_heading[heading],
                    line=i + 2,
                    code=textwrap.dedent(body) + "\n",
                    mark=mark["kind"] if mark else None,
                    reason=mark["reason"] if mark else "",
                )
            )
        previous = ""
        i = end + 1
    return blocks


def _closes(line: str, opener: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(opener) and set(stripped) == {opener[0]}


def _unindent(line: str, indent: str) -> str:
    """Drop the fence's own indentation (a block inside a list item), no more."""
    return line[len(indent) :] if line.startswith(indent) else line.lstrip()


def readme_blocks() -> list[Block]:
    return python_blocks(README.read_text(encoding="utf-8"))
