"""cerebras-paygo: the common core behind the LangChain and LlamaIndex adapters."""

from cerebras_paygo._version import __version__
from cerebras_paygo.catalog import Catalog, ModelSpec, default_catalog
from cerebras_paygo.errors import *  # noqa: F403
from cerebras_paygo.errors import __all__ as _errors_all
from cerebras_paygo.ratelimit.limits import RateLimits
from cerebras_paygo.settings import Settings

__all__ = ["Catalog", "ModelSpec", "RateLimits", "Settings", "__version__", "default_catalog", *_errors_all]
