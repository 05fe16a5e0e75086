"""LangChain integration of cerebras-paygo: ``from langchain_cerebras_paygo import ChatCerebras``."""

from cerebras_paygo._version import __version__
from langchain_cerebras_paygo._init import init_chat_model
from langchain_cerebras_paygo.chat_models import ChatCerebras

__all__ = ["ChatCerebras", "__version__", "init_chat_model"]
