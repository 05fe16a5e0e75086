"""LangChain integration of cerebras-paygo: ``from langchain_cerebras_paygo import ChatCerebras``."""

from cerebras_paygo._version import __version__

try:
    import langchain_core  # noqa: F401  (only to name the extra when it is missing)
except ModuleNotFoundError as exc:
    if exc.name is None or not exc.name.startswith("langchain_core"):
        raise
    raise ModuleNotFoundError(
        'langchain_cerebras_paygo needs LangChain: pip install "cerebras-paygo[langchain]"', name=exc.name
    ) from exc

from langchain_cerebras_paygo._init import init_chat_model
from langchain_cerebras_paygo.chat_models import ChatCerebras

__all__ = ["ChatCerebras", "__version__", "init_chat_model"]
