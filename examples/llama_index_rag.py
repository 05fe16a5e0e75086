"""LlamaIndex on Cerebras: a query engine over documents, and a chat engine over the same index.

Run it as is::

    python examples/llama_index_rag.py

With ``CEREBRAS_API_KEY`` set it talks to the real API; without it, it starts the embedded emulator
(``pip install "cerebras-paygo[llama-index]"``). ``SummaryIndex`` needs no embedding model; with one
(``Settings.embed_model``), ``VectorStoreIndex`` works the same way. Agents: ``llama_index_agent.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from llama_index.core import Document, SummaryIndex
from pydantic import SecretStr

from llama_index_cerebras import Cerebras

MODEL = os.environ.get("CEREBRAS_MODEL", "gpt-oss-120b")


@contextmanager
def llm() -> Iterator[Cerebras]:
    """A Cerebras LLM on the real API when CEREBRAS_API_KEY is set, else on the embedded emulator."""
    if os.environ.get("CEREBRAS_API_KEY"):
        print("Using the Cerebras API (CEREBRAS_API_KEY is set)")
        yield Cerebras(model=MODEL, max_tokens=1024)
        return
    from cerebras_paygo.emulator import EmulatorServer

    with EmulatorServer() as server:
        print(f"CEREBRAS_API_KEY is not set: using the embedded Cerebras emulator at {server.base_url}")
        yield Cerebras(model=MODEL, max_tokens=1024, api_key=SecretStr(server.api_key), base_url=server.base_url)


def main() -> None:
    docs = [
        Document(text="Cerebras PayGo charges per input and output token at per-model prices."),
        Document(text="Auto-recharge tops the balance up when it falls below a threshold."),
    ]
    with llm() as model:
        index = SummaryIndex.from_documents(docs)
        print("1. A query engine over two documents")
        engine = index.as_query_engine(llm=model)
        response = engine.query("How does auto-recharge work?")
        print(f"   {response} (from {len(response.source_nodes)} documents)")
        print("2. A chat engine over the same index (condense_plus_context: follow-ups keep the thread)")
        chat = index.as_chat_engine(chat_mode="condense_plus_context", llm=model)
        print(f"   {chat.chat('How does PayGo charge?')}")
        print(f"   {chat.chat('And what tops the balance up?')}")
    print("Done.")


if __name__ == "__main__":
    main()
