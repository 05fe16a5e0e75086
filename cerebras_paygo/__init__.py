"""cerebras-paygo: the common core behind the LangChain and LlamaIndex adapters."""

from typing import TYPE_CHECKING, Any

from cerebras_paygo._version import __version__
from cerebras_paygo.catalog import Catalog, ModelSpec, default_catalog
from cerebras_paygo.errors import *  # noqa: F403
from cerebras_paygo.errors import __all__ as _errors_all
from cerebras_paygo.ratelimit.limits import RateLimits
from cerebras_paygo.settings import Settings

if TYPE_CHECKING:
    from cerebras_paygo.gateway import CallInfo, CerebrasClient, ChatResult

__all__ = [
    "CallInfo",
    "Catalog",
    "CerebrasClient",
    "ChatResult",
    "ModelSpec",
    "RateLimits",
    "Settings",
    "__version__",
    "default_catalog",
    *_errors_all,
]


def __getattr__(name: str) -> Any:
    # The client pulls in the whole stack; load it on first use so `import cerebras_paygo.errors` stays light.
    if name in ("CerebrasClient", "CallInfo", "ChatResult"):
        from cerebras_paygo import gateway

        return getattr(gateway, name)
    raise AttributeError(f"module 'cerebras_paygo' has no attribute {name!r}")
