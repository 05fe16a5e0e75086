"""What the subcommands share: connection options, errors -> message and exit code, plain tables."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

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
    "EXIT_API",
    "EXIT_AUTH",
    "EXIT_CODES_HELP",
    "EXIT_CONFIG",
    "EXIT_CONNECTION",
    "EXIT_MODEL",
    "EXIT_OK",
    "EXIT_PAYMENT",
    "EXIT_QUOTA",
    "Failure",
    "add_connection_arguments",
    "describe_failure",
    "format_int",
    "format_usd",
    "key_source",
    "non_negative_float",
    "positive_float",
    "positive_int",
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
        choices=["paygo", "free"],
        help="your key's tier (default: $CEREBRAS_TIER, else paygo)",
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
