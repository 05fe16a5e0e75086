"""``init_chat_model`` with a route to Cerebras.

langchain's ``init_chat_model`` knows a fixed table of providers (``"cerebras"`` is not in it) and
infers a bare ``"gpt-oss-120b"`` as OpenAI. This one takes the same arguments: ``"cerebras:<id>"``,
``model_provider="cerebras"`` or a bare id the model catalog knows builds a ``ChatCerebras``;
anything else goes to langchain's own (which needs the ``langchain`` package).
"""

from __future__ import annotations

from typing import Any

from cerebras_paygo.errors import ConfigurationError

PROVIDER = "cerebras"


def split_model_id(model: str, model_provider: str | None = None) -> tuple[str | None, str]:
    """``("cerebras", "gpt-oss-120b")`` for ``"cerebras:gpt-oss-120b"``; ``(provider, model)`` otherwise."""
    if model_provider is None and ":" in model:
        prefix, rest = model.split(":", 1)
        if prefix.lower() == PROVIDER:
            return PROVIDER, rest
    if model_provider is not None:
        return model_provider.lower().replace("-", "_"), model
    from cerebras_paygo import default_catalog

    if model in default_catalog():
        return PROVIDER, model
    return None, model


def init_chat_model(
    model: str | None = None,
    *,
    model_provider: str | None = None,
    configurable_fields: Any = None,
    config_prefix: str | None = None,
    **kwargs: Any,
) -> Any:
    """langchain's ``init_chat_model``, plus Cerebras: ``init_chat_model("cerebras:gpt-oss-120b", max_tokens=512)``.

    Returns a ``ChatCerebras`` for ``"cerebras:<id>"``, ``model_provider="cerebras"`` or a bare id in
    the catalog (``gpt-oss-120b``, ``zai-glm-4.7``); otherwise what langchain's returns. A
    runtime-configurable Cerebras model is ``ChatCerebras(...).configurable_fields(...)`` or
    ``.configurable_alternatives(...)`` (see the README), not ``configurable_fields=`` here.
    """
    if model is not None:
        provider, model_id = split_model_id(model, model_provider)
        if provider == PROVIDER:
            if configurable_fields is not None or config_prefix is not None:
                raise ConfigurationError(
                    "configurable_fields= does not apply to a Cerebras model here; use "
                    "ChatCerebras(...).configurable_fields(...) or .configurable_alternatives(...)"
                )
            from langchain_cerebras_paygo.chat_models import ChatCerebras

            return ChatCerebras(model=model_id, **kwargs)
    try:
        from langchain.chat_models import init_chat_model as langchain_init
    except ImportError as exc:  # only langchain-core is installed
        raise ConfigurationError(
            f"model {model!r} is not a Cerebras model, and other providers need langchain's "
            "init_chat_model: pip install langchain"
        ) from exc
    return langchain_init(
        model,
        model_provider=model_provider,
        configurable_fields=configurable_fields,
        config_prefix=config_prefix,
        **kwargs,
    )
