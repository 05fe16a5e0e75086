"""What the subcommands share: connection options, errors -> message and exit code, and the
``Printer`` every table and paragraph goes through (rich's ``Table`` at the terminal's width, 80
when piped; plain aligned text when rich, the ``[cli]`` extra, is not installed)."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import textwrap
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from cerebras_paygo._settings import Settings, env_api_key
from cerebras_paygo.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BudgetExceededError,
    CerebrasError,
    ConfigurationError,
    ContextWindowExceededError,
    MissingAPIKeyError,
    ModelNotFoundError,
    ModelRetiredError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
)

__all__ = [
    "CLI_EXTRA_NOTE",
    "EXIT_API",
    "EXIT_AUTH",
    "EXIT_CODES_HELP",
    "EXIT_CONFIG",
    "EXIT_CONNECTION",
    "EXIT_MODEL",
    "EXIT_OK",
    "EXIT_PAYMENT",
    "EXIT_QUOTA",
    "Column",
    "Failure",
    "Printer",
    "add_connection_arguments",
    "describe_failure",
    "failure_record",
    "format_int",
    "format_usd",
    "key_source",
    "non_negative_float",
    "positive_float",
    "positive_int",
    "print_json",
    "quiet_library_logs",
    "render_table",
    "settings_from_args",
]

EXIT_OK = 0
EXIT_API = 1
EXIT_CONFIG = 2
EXIT_AUTH = 3
EXIT_PAYMENT = 4
EXIT_CONNECTION = 5
EXIT_MODEL = 6
EXIT_QUOTA = 7

EXIT_CODES_HELP = (
    "exit codes: 0 ok, 1 other API error, 2 bad settings, 3 wrong key or no access (401/403), "
    "4 no credit (402), 5 cannot reach the server, 6 model unknown or retired, 7 rate limit, budget or size"
)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """``--api-key``, ``--base-url`` and ``--tier``; each falls back to its ``CEREBRAS_*`` variable."""
    group = parser.add_argument_group("connection (default: the CEREBRAS_* environment variables)")
    group.add_argument(
        "--api-key", metavar="KEY", help="Cerebras API key (default: $CEREBRAS_API_KEY; never $OPENAI_API_KEY)"
    )
    group.add_argument("--base-url", metavar="URL", help="API root (default: $CEREBRAS_BASE_URL, else the real API)")
    group.add_argument(
        "--tier",
        type=str.lower,
        choices=["auto", "paygo", "free"],
        help="your key's tier (default: $CEREBRAS_TIER, else auto: learned from the first answer)",
    )


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {text!r}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


@contextmanager
def quiet_library_logs(verbose: bool) -> Iterator[None]:
    """While a command runs, the library's log lines go nowhere (its own messages say more), unless
    ``verbose`` or the application configured logging itself; ``verbose`` prints INFO and up."""
    library = logging.getLogger("cerebras_paygo")
    if verbose:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        previous_level = library.level
        library.setLevel(logging.INFO)
    elif library.handlers or logging.getLogger().handlers:
        yield
        return
    else:
        handler = logging.NullHandler()
        previous_level = library.level
    library.addHandler(handler)
    try:
        yield
    finally:
        library.removeHandler(handler)
        library.setLevel(previous_level)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the connection options over the environment (``ConfigurationError`` if invalid)."""
    return Settings.from_env(api_key=args.api_key or None, base_url=args.base_url or None, tier=args.tier or None)


def key_source(args: argparse.Namespace) -> str:
    if args.api_key:
        return "--api-key"
    return "$CEREBRAS_API_KEY" if env_api_key() is not None else "nowhere"


@dataclass(frozen=True)
class Failure:
    """One error as the command line reports it: a headline, details and the exit code."""

    headline: str
    details: tuple[str, ...]
    exit_code: int


def describe_failure(error: CerebrasError, settings: Settings | None, model: str | None = None) -> Failure:
    """A message a newcomer can act on, and the exit code, for any ``CerebrasError``.

    The key never appears: error messages come from the server's body, and only the key's
    fingerprint is named here.
    """
    base_url = settings.base_url if settings is not None else "the server"
    fingerprint = settings.fingerprint if settings is not None else "?"
    if isinstance(error, MissingAPIKeyError):
        return Failure(
            "no API key",
            ("set CEREBRAS_API_KEY=csk-... (or pass --api-key); OPENAI_API_KEY is never used",),
            EXIT_CONFIG,
        )
    if isinstance(error, ConfigurationError):
        return Failure("invalid settings", (error.message,), EXIT_CONFIG)
    if isinstance(error, AuthenticationError):
        return Failure(
            f"wrong key: {base_url} refused the key with fingerprint {fingerprint} (401)",
            (
                f"server said: {error.message}",
                "check CEREBRAS_API_KEY: a key from cloud.cerebras.ai -> API Keys, starting with 'csk-', "
                "for the server in CEREBRAS_BASE_URL",
            ),
            EXIT_AUTH,
        )
    if isinstance(error, PermissionDeniedError):
        return Failure(
            f"no access: {base_url} does not let key {fingerprint} use this resource (403)",
            (f"server said: {error.message}",),
            EXIT_AUTH,
        )
    if isinstance(error, PaymentRequiredError):
        return Failure("payment required (402)", (error.message,), EXIT_PAYMENT)
    if isinstance(error, ModelRetiredError):
        details = [error.message]
        if error.replacement:
            details.append(f"use the replacement: --model {error.replacement}")
        return Failure(f"model {error.model!r} is retired", tuple(details), EXIT_MODEL)
    if isinstance(error, ModelNotFoundError):
        return Failure(
            f"model {model!r} not found, or key {fingerprint} has no access to it (404)",
            (f"server said: {error.message}", "list what the server offers: cerebras-paygo models --live"),
            EXIT_MODEL,
        )
    if isinstance(error, APITimeoutError):
        return Failure(f"cannot reach {base_url}: timed out", (error.message,), EXIT_CONNECTION)
    if isinstance(error, APIConnectionError):
        return Failure(
            f"cannot reach {base_url}",
            (error.message, "check CEREBRAS_BASE_URL, your network and proxy settings"),
            EXIT_CONNECTION,
        )
    if isinstance(error, ContextWindowExceededError):
        return Failure("the prompt does not fit the context window", (error.message,), EXIT_QUOTA)
    if isinstance(error, RateLimitError):
        return Failure("rate limited (429)", (error.message,), EXIT_QUOTA)
    if isinstance(error, (BudgetExceededError, RequestTooLargeError)):
        return Failure(type(error).__name__, (error.message,), EXIT_QUOTA)
    return Failure(f"the request failed: {type(error).__name__}", (str(error),), EXIT_API)


def format_int(value: float | None) -> str:
    return "-" if value is None else f"{round(value):,}"


def format_usd(value: float) -> str:
    if value == 0:
        return "$0"
    if abs(value) >= 0.01:
        return f"${value:,.4f}"
    return f"${value:.8f}".rstrip("0").rstrip(".")


def render_table(
    headers: Sequence[str] | None, rows: Sequence[Sequence[str]], *, indent: str = "", right: Collection[str] = ()
) -> str:
    """A plain-text table (no header line when ``headers`` is None); the columns named in ``right``
    are right-aligned."""
    names = list(headers) if headers is not None else [""] * max((len(row) for row in rows), default=0)
    widths = [len(h) for h in names]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    right_set = set(right)

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            out.append(cell.rjust(widths[i]) if names[i] and names[i] in right_set else cell.ljust(widths[i]))
        return (indent + "  ".join(out)).rstrip()

    lines = [line(row) for row in rows]
    return "\n".join([line(names), *lines] if headers is not None else lines)


def failure_record(failure: Failure) -> dict[str, Any]:
    """A failure for ``--json``: ``{"headline", "details", "exit_code"}``."""
    return {"headline": failure.headline, "details": list(failure.details), "exit_code": failure.exit_code}


def print_json(document: Any) -> None:
    """``--json``: one document on stdout, nothing else there."""
    print(json.dumps(document, indent=2))


CLI_EXTRA_NOTE = "note: tables fit the terminal with rich: pip install 'cerebras-paygo[cli]' (plain text instead)"


@dataclass(frozen=True)
class Column:
    """A table column. ``wrap``: prose that may wrap at spaces; otherwise (ids, numbers) the column
    keeps its full width and is never wrapped or cut. ``right``: right-aligned (numbers)."""

    header: str
    right: bool = False
    wrap: bool = False


def _plain_width() -> int:
    """Without rich: the terminal's width ($COLUMNS first), else 80."""
    return shutil.get_terminal_size((80, 24)).columns


def _fill(text: str, initial_indent: str, subsequent_indent: str) -> str:
    """Plain wrapping that never splits a word (ids, URLs, numbers stay whole)."""
    return textwrap.fill(
        text,
        _plain_width(),
        initial_indent=initial_indent,
        subsequent_indent=subsequent_indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _rich_available() -> bool:
    try:
        import rich.console  # noqa: F401
    except ImportError:
        return False
    return True


class Printer:
    """Tables, label/value lists and paragraphs for stdout (or ``file``).

    With rich: ``rich.table.Table`` laid out for the console's width (the terminal's, else
    ``$COLUMNS``, else 80); id and number columns are never wrapped or cut, prose wraps at spaces,
    trailing spaces are stripped. Without rich: the same content as plain aligned text, and a note
    on stderr (once) naming the extra to install.
    """

    _noted = False

    def __init__(self, file: TextIO | None = None) -> None:
        self._file = file
        self.rich = _rich_available()
        if not self.rich and not Printer._noted:
            Printer._noted = True
            print(CLI_EXTRA_NOTE, file=sys.stderr)

    @property
    def file(self) -> TextIO:
        return self._file if self._file is not None else sys.stdout

    def _emit(self, renderable: Any) -> None:
        from rich.console import Console

        console = Console(file=self.file, highlight=False, markup=False, emoji=False)
        with console.capture() as captured:
            console.print(renderable)
        text = "\n".join(line.rstrip() for line in captured.get().splitlines())
        print(text, file=self.file)

    def line(self, text: str = "", *, indent: int = 0) -> None:
        """A paragraph, wrapped at spaces to the width."""
        if not self.rich or not text:
            pad = " " * indent
            print(
                _fill(text, pad, pad) if text else "",
                file=self.file,
            )
            return
        from rich.padding import Padding
        from rich.text import Text

        self._emit(Padding(Text(text), (0, 0, 0, indent), expand=False) if indent else Text(text))

    def table(
        self, columns: Sequence[Column], rows: Sequence[Sequence[str]], *, title: str | None = None, indent: int = 0
    ) -> None:
        """A table with a header row (and ``title`` above it)."""
        if not self.rich:
            if title:
                print(f"{' ' * indent}{title}", file=self.file)
            print(
                render_table(
                    [c.header for c in columns], rows, indent=" " * indent, right=[c.header for c in columns if c.right]
                ),
                file=self.file,
            )
            return
        from rich.padding import Padding
        from rich.table import Table

        table = Table(
            box=None,
            pad_edge=False,
            padding=(0, 1),
            title=title,
            title_justify="left",
            title_style="bold",
            header_style="bold",
        )
        for column in columns:
            table.add_column(
                column.header, justify="right" if column.right else "left", no_wrap=not column.wrap, overflow="fold"
            )
        for row in rows:
            table.add_row(*row)
        self._emit(Padding(table, (0, 0, 0, indent), expand=False) if indent else table)

    def fields(self, rows: Sequence[tuple[str, str]], *, indent: int = 2, label_width: int = 0) -> None:
        """``label  value`` lines: the labels in a column (at least ``label_width`` wide), the values
        wrapped beside them."""
        if not self.rich:
            width = max([label_width, *(len(label) for label, _ in rows)])
            hang = " " * (indent + width + 1)
            for label, value in rows:
                first = f"{' ' * indent}{label.ljust(width)} "
                print(
                    _fill(value, first, hang) or first.rstrip(),
                    file=self.file,
                )
            return
        from rich.padding import Padding
        from rich.table import Table

        grid = Table.grid(padding=(0, 1, 0, 0))
        grid.add_column(no_wrap=True, min_width=label_width)
        grid.add_column(overflow="fold")
        for label, value in rows:
            grid.add_row(label, value)
        self._emit(Padding(grid, (0, 0, 0, indent), expand=False) if indent else grid)
