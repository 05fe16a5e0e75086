"""LlamaIndex integration of cerebras-paygo: ``from llama_index_cerebras import Cerebras``.

``Cerebras`` is a ``FunctionCallingLLM`` over ``cerebras_paygo.CerebrasClient``: token-aware shared
rate limiting, 402 handling, context caps and spend tracking on every call, metadata from the
model catalog (so agents and structured output work), and no dependency on langchain or openai.
"""

from cerebras_paygo._version import __version__

try:
    import llama_index.core  # noqa: F401  (only to name the extra when it is missing)
except ModuleNotFoundError as exc:
    if exc.name is None or not exc.name.startswith("llama_index"):
        raise
    raise ModuleNotFoundError(
        'llama_index_cerebras needs LlamaIndex: pip install "cerebras-paygo[llama-index]"', name=exc.name
    ) from exc

from llama_index_cerebras.base import Cerebras

__all__ = ["Cerebras", "__version__"]
