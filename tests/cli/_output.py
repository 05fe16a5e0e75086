"""Reading the command line's text output as a user's 80-column terminal shows it."""

from __future__ import annotations

WIDTH = 80


def assert_fits(out: str, width: int = WIDTH) -> None:
    """No line is wider than the terminal (rich would otherwise have cut or wrapped it badly)."""
    long = [line for line in out.splitlines() if len(line) > width]
    assert not long, f"{len(long)} line(s) over {width} columns: {long}"


def flat(out: str) -> str:
    """The text with its wrapping undone (every run of whitespace one space), for phrases in prose."""
    return " ".join(out.split())


def section(out: str, title: str) -> list[str]:
    """The lines of the table titled ``title``: from the line after it to the next blank line."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title)) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def row(lines: list[str], first: str) -> str:
    """The one line whose first cell is ``first``."""
    found = [line for line in lines if line.split() and line.split()[0] == first]
    assert len(found) == 1, (first, lines)
    return found[0]
