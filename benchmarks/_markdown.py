"""Write one benchmark's section of BENCHMARKS.md, between its markers, leaving every other section alone."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def read_section(path: Path, begin: str, end: str) -> str:
    """The current text of a section, markers included ("" when absent)."""
    text = path.read_text("utf-8") if path.exists() else ""
    i, j = text.find(begin), text.find(end)
    return text[i : j + len(end)] if i != -1 and j > i else ""


def replace_section(path: Path, begin: str, end: str, section: str) -> None:
    """Put ``section`` (markers included) in place of the old one, or append it; write atomically."""
    text = path.read_text("utf-8") if path.exists() else "# Benchmarks\n"
    i, j = text.find(begin), text.find(end)
    if i != -1 and j > i:
        text = text[:i] + section + text[j + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".BENCHMARKS.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
