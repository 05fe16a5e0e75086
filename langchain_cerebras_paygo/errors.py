"""The core's errors, raised from ``ChatCerebras`` as langchain-core's standard exceptions too.

LangChain decides what to do with a failed model call by langchain-core's exception types:
``with_fallbacks(exceptions_to_handle=(ContextOverflowError,))`` falls back on an overflow,
``ModelRetryMiddleware`` retries only a ``ModelError`` whose ``is_retryable`` is true, and
``SummarizationMiddleware`` shrinks its prompt on ``ContextOverflowError``. So every error
``ChatCerebras`` raises is an instance of a class made here once per core class, with two bases:
the exact core class (``cerebras_paygo.errors.APIRateLimitError`` stays an ``APIRateLimitError``,
a ``RateLimitError`` and an ``APIStatusError``) and langchain-core's matching exception
(``ModelRateLimitError``). ``cerebras_paygo.errors`` stays the one tree to catch by; the bridged
error has the same message and attributes and the core error as its ``__cause__``.

| core class (and its subclasses)                    | langchain-core exception      | retryable |
|----------------------------------------------------|-------------------------------|-----------|
| ``ContextWindowExceededError`` (API and local)     | ``ContextOverflowError``      | no        |
| ``AuthenticationError``, ``MissingAPIKeyError``    | ``ModelAuthenticationError``  | no        |
| ``PermissionDeniedError``                          | ``ModelPermissionDeniedError``| no        |
| ``ModelNotFoundError`` (API and retired)           | ``ModelNotFoundError``        | no        |
| ``RateLimitError`` (API and local)                 | ``ModelRateLimitError``       | yes       |
| ``BadRequestError``, ``ConfigurationError``,       | ``ModelInvalidRequestError``  | no        |
| ``RequestTooLargeError``                           |                               |           |
| ``ServerError``, ``MalformedResponseError``        | ``ModelAPIError``             | yes       |
| ``APITimeoutError``, ``StreamTimeoutError``        | ``ModelTimeoutError``         | yes       |
| ``APIConnectionError``, ``StreamInterruptedError`` | ``ModelConnectionError``      | yes       |
| ``PaymentRequiredError``, ``BudgetExceededError``, | ``ModelError``                | no        |
| other ``APIStatusError`` / ``CerebrasError``       |                               |           |

A 402 or a budget refusal is not retryable here: the core has already waited for credit as the
payment policy allows, and an agent retrying at once cannot do better. ``BackendUnavailableError``
(Redis) is a ``ModelError`` marked retryable.

langchain-core before 1.8 has no ``ModelError`` family: then only the classes that exist are
bridged (``ContextOverflowError`` where present) and the rest are raised as the core made them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeVar

from langchain_core import exceptions as _lc

from cerebras_paygo import errors as _core

__all__ = ["bridge", "bridged_class", "bridged_errors"]

_E = TypeVar("_E", bound=BaseException)

# Core class -> (name of langchain-core's class, retryable override or None). Looked up along the
# core class's MRO, so the nearest entry wins (``StreamTimeoutError`` before ``StreamInterruptedError``).
_LC_BASES: dict[type[_core.CerebrasError], tuple[str, bool | None]] = {
    _core.ContextWindowExceededError: ("ContextOverflowError", None),
    _core.MissingAPIKeyError: ("ModelAuthenticationError", None),
    _core.ConfigurationError: ("ModelInvalidRequestError", None),
    _core.AuthenticationError: ("ModelAuthenticationError", None),
    _core.PermissionDeniedError: ("ModelPermissionDeniedError", None),
    _core.ModelNotFoundError: ("ModelNotFoundError", None),
    _core.RateLimitError: ("ModelRateLimitError", None),
    _core.PaymentRequiredError: ("ModelError", False),
    _core.BadRequestError: ("ModelInvalidRequestError", None),
    _core.RequestTooLargeError: ("ModelInvalidRequestError", None),
    _core.ServerError: ("ModelAPIError", None),
    _core.MalformedResponseError: ("ModelAPIError", None),
    _core.StreamTimeoutError: ("ModelTimeoutError", None),
    _core.APITimeoutError: ("ModelTimeoutError", None),
    _core.StreamInterruptedError: ("ModelConnectionError", None),
    _core.APIConnectionError: ("ModelConnectionError", None),
    _core.BudgetExceededError: ("ModelError", False),
    _core.BackendUnavailableError: ("ModelError", True),
    _core.APIStatusError: ("ModelError", False),
    _core.CerebrasError: ("ModelError", False),
}

_BRIDGED: dict[type[BaseException], type[BaseException] | None] = {}


def _rebuild(core_cls: type[_core.CerebrasError], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    """Unpickle a bridged error without calling the core constructor (its keywords vary by class)."""
    cls = bridged_class(core_cls) or core_cls
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


def _reduce(self: BaseException) -> tuple[Any, ...]:
    core_cls = next(c for c in type(self).__mro__[1:] if issubclass(c, _core.CerebrasError))
    return (_rebuild, (core_cls, self.args, dict(self.__dict__)))


def _lc_base(core_cls: type[BaseException]) -> tuple[type[Exception], bool | None] | None:
    for klass in core_cls.__mro__:
        entry = _LC_BASES.get(klass)
        if entry is None:
            continue
        base = getattr(_lc, entry[0], None)
        if isinstance(base, type) and issubclass(base, Exception):
            return base, entry[1]
        # This langchain-core lacks the class: try the concept's generic one (``ModelError``).
        generic = getattr(_lc, "ModelError", None)
        if isinstance(generic, type) and issubclass(generic, Exception):
            return generic, entry[1]
        return None
    return None


def bridged_class(core_cls: type[_E]) -> type[_E] | None:
    """The class with bases ``(core_cls, <langchain-core's class>)``; ``None`` when this
    langchain-core has no matching class (or ``core_cls`` is not a core error)."""
    if core_cls in _BRIDGED:
        return _BRIDGED[core_cls]  # type: ignore[return-value]
    made: type[BaseException] | None = None
    if issubclass(core_cls, _core.CerebrasError) and not _is_langchain_error(core_cls):
        found = _lc_base(core_cls)
        if found is not None:
            base, retryable = found
            namespace: dict[str, Any] = {
                "__module__": __name__,
                "__qualname__": core_cls.__name__,
                "__doc__": core_cls.__doc__,
                "__reduce__": _reduce,
            }
            if retryable is not None:
                namespace["is_retryable"] = retryable
            made = type(core_cls.__name__, (core_cls, base), namespace)
    _BRIDGED[core_cls] = made
    return made  # type: ignore[return-value]


def _is_langchain_error(cls: type[BaseException]) -> bool:
    root = getattr(_lc, "LangChainException", None)
    return isinstance(root, type) and issubclass(cls, root)


def bridge(error: _E) -> _E:
    """``error`` as its bridged class (same message, attributes and traceback), or itself when it
    is not a core error, is bridged already, or this langchain-core has nothing to bridge it to."""
    cls = bridged_class(type(error))
    if cls is None:
        return error
    bridged = cls.__new__(cls, *error.args)
    bridged.args = error.args
    bridged.__dict__.update(error.__dict__)
    bridged.__cause__ = error
    bridged.__suppress_context__ = True
    return bridged.with_traceback(error.__traceback__)


@contextlib.contextmanager
def bridged_errors() -> Iterator[None]:
    """Re-raise a core error as its bridged class, ``from`` the core error."""
    try:
        yield
    except _core.CerebrasError as error:
        bridged = bridge(error)
        if bridged is error:
            raise
        raise bridged from error


# Built once, at import: every class of the core tree has its bridged class ready (the lazy path
# above only serves subclasses defined elsewhere).
for _name in _core.__all__:
    _obj = getattr(_core, _name)
    if isinstance(_obj, type) and issubclass(_obj, _core.CerebrasError):
        _made = bridged_class(_obj)
        if _made is not None:
            globals()[_name] = _made
del _name, _obj, _made
