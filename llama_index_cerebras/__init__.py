"""LlamaIndex adapter for cerebras-paygo (``Cerebras``, a ``FunctionCallingLLM``): not built yet.

The core (``cerebras_paygo``) and the LangChain adapter are usable today; this package only
reserves the import name so the distribution's layout is final.
"""

__all__: list[str] = []
