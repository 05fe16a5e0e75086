"""``ChatCerebras``: a LangChain chat model over the cerebras-paygo core.

Every call goes through ``cerebras_paygo.CerebrasClient``, so rate limits (tokens and requests per
minute, hour and day, shared by every instance in the process), 402 handling, context-window
checks, retries and spend tracking apply to ``invoke``, ``ainvoke``, ``stream``, ``astream``,
``batch`` and ``abatch`` alike. This module only translates (see ``_convert`` and ``_structured``).
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput, ModelProfile
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import get_fields
from pydantic import AliasChoices, ConfigDict, Field, PrivateAttr, SecretStr, field_validator, model_validator
from typing_extensions import Self

from cerebras_paygo._adapters import ClientOwner, env_api_key, secret_key
from cerebras_paygo._tools import api_tool_choice, forced_tool
from cerebras_paygo.errors import ConfigurationError
from langchain_cerebras_paygo._init import PROVIDER, split_model_id
from langchain_cerebras_paygo.errors import bridged_errors

if TYPE_CHECKING:
    # Named by annotations and imported where used: importing this module leaves the core
    # unimported until the first instance (see ``cerebras_paygo._adapters``).
    import httpx

    from cerebras_paygo import CerebrasClient, PaymentPolicy
    from cerebras_paygo._options import ClientOptions
    from cerebras_paygo._wire import ChatCompletionRequest

__all__ = ["ChatCerebras"]

DEFAULT_MODEL = "gpt-oss-120b"
INTEGRATION_NAME = "langchain-cerebras-paygo"

# Constructor names of langchain-cerebras (and langchain-openai) -> ours, so that code written for
# ``langchain_cerebras.ChatCerebras`` runs unchanged.
_LEGACY_NAMES = {
    "cerebras_api_key": "api_key",
    "cerebras_api_base": "base_url",
    "http_client_async": "http_async_client",
}
# OpenAI settings are refused rather than mapped or sent on as request fields: an OpenAI key must
# never reach Cerebras, not even inside a request body.
_REFUSED_NAMES = frozenset({"openai_api_key", "openai_api_base", "openai_organization", "openai_proxy"})

_ToolChoice = dict[str, Any] | str | bool | None
_T = TypeVar("_T")


class ChatCerebras(ClientOwner, BaseChatModel):
    """Cerebras chat models (PayGo and free tier) for LangChain.

    A drop-in for ``langchain_cerebras.ChatCerebras`` (same constructor names) that stays inside
    the API's limits: requests and tokens per minute/hour/day are reserved before sending and
    shared by every instance in the process, ``402 Payment Required`` follows a payment policy,
    prompts that cannot fit the model's window fail before any request, and each response says
    what it cost and what the rate-limit headers said.

    Setup:
        ``pip install "cerebras-paygo[langchain]"`` and ``export CEREBRAS_API_KEY=csk-...``
        (``OPENAI_API_KEY`` is never read).

    Example:
        .. code-block:: python

            from langchain_cerebras_paygo import ChatCerebras

            llm = ChatCerebras(model="gpt-oss-120b", max_tokens=512)
            msg = llm.invoke("Say hi in Portuguese")
            msg.text                                   # 'Olá!'
            msg.usage_metadata                         # {'input_tokens': 22, 'output_tokens': 4, ...}
            msg.response_metadata["cost_usd"]          # 1.07e-05
            msg.response_metadata["rate_limits"]       # {'limit': {...}, 'remaining': {...}, 'reset': {...}}

    Key init args (completion):
        model: the model id (``gpt-oss-120b`` by default; see ``cerebras-paygo models``).
        temperature, top_p, seed, stop, max_tokens (alias ``max_completion_tokens``),
        reasoning_effort, reasoning_format, clear_thinking, service_tier, model_kwargs, extra_body.

    Key init args (client):
        api_key (``CEREBRAS_API_KEY``), base_url (``CEREBRAS_BASE_URL``), timeout, max_retries,
        default_headers, http_client / http_async_client, and the core's own: tier, rate_limits,
        payment_policy, context_overflow, max_spend_usd, client.
    """

    # defer_build: the first instance builds the validator (``ClientOwner.complete_model``).
    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, defer_build=True)

    # --- model and sampling -------------------------------------------------------------------
    model_name: str = Field(default=DEFAULT_MODEL, alias="model")
    """Model id, for instance ``gpt-oss-120b`` or ``zai-glm-4.7``."""
    temperature: float | None = None
    """Sampling temperature (the model's default when unset)."""
    # ``validation_alias`` (not ``alias``): type checkers build ``__init__`` from ``alias``, so the
    # field's own name, the one the README and langchain-cerebras use, stays the typed parameter.
    max_tokens: int | None = Field(default=None, validation_alias=AliasChoices("max_tokens", "max_completion_tokens"))
    """Most tokens to generate, reasoning included (sent as ``max_completion_tokens``).

    Cerebras reserves the whole of it against the tokens-per-minute quota; when unset the core
    picks the catalog's default for the model and tier rather than the model's maximum."""
    top_p: float | None = None
    """Nucleus sampling mass."""
    seed: int | None = None
    """Best-effort deterministic sampling."""
    stop: list[str] | str | None = Field(default=None, validation_alias=AliasChoices("stop", "stop_sequences"))
    """Stop sequences (up to 4); the stop text is not returned."""
    frequency_penalty: float | None = None
    """Penalty for frequent tokens (-2..2)."""
    presence_penalty: float | None = None
    """Penalty for tokens already present (-2..2)."""
    logprobs: bool | None = None
    """Return token log probabilities (in ``response_metadata["logprobs"]``)."""
    top_logprobs: int | None = None
    """Alternatives per position when ``logprobs`` is on (0..20)."""
    reasoning_effort: Literal["none", "low", "medium", "high"] | None = None
    """How hard a reasoning model thinks; ``"none"`` turns reasoning off on models that allow it."""
    reasoning_format: Literal["parsed", "text_parsed", "raw", "hidden", "none"] | None = None
    """Where reasoning goes: ``parsed``/``text_parsed`` (a separate field, surfaced as
    ``additional_kwargs["reasoning_content"]``), ``raw`` (in the text), ``hidden`` (dropped)."""
    clear_thinking: bool | None = None
    """``False`` keeps earlier turns' reasoning in the prompt (agentic use); the API default drops it."""
    disable_reasoning: bool | None = None
    """Deprecated by Cerebras in favour of ``reasoning_effort="none"``; sent as given."""
    service_tier: Literal["auto", "default", "flex", "priority"] | None = None
    """Cerebras service tier (private preview)."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other request fields, sent as they are (unknown constructor arguments land here)."""
    extra_body: dict[str, Any] | None = None
    """Fields merged into the JSON body last (as in the OpenAI clients)."""

    # --- streaming ----------------------------------------------------------------------------
    streaming: bool = False
    """Stream by default (``invoke`` then aggregates the stream)."""
    stream_usage: bool = True
    """Ask for usage on streams (``stream_options.include_usage``); exactly one chunk carries it."""

    # --- client -------------------------------------------------------------------------------
    # ``str`` in the annotation only so ``api_key="csk-..."`` type-checks; the value is always
    # turned into a ``SecretStr`` before it is stored.
    api_key: SecretStr | str | None = Field(default_factory=env_api_key)
    """The Cerebras key (a ``str`` is stored as ``SecretStr``); ``CEREBRAS_API_KEY`` when not given.
    A missing key fails at the first call with ``MissingAPIKeyError``, never by sending another
    provider's key."""
    base_url: str | None = None
    """API root; else ``CEREBRAS_BASE_URL`` (or ``CEREBRAS_API_BASE``), else ``https://api.cerebras.ai/v1``.
    Plain ``http://`` is accepted only for loopback hosts (the emulator)."""
    request_timeout: float | httpx.Timeout | None = Field(default=None, alias="timeout")
    """HTTP timeout in seconds (default 60 s read, 5 s connect)."""
    max_retries: int | None = 2
    """Retries of 5xx and connection failures. 429s are waited out by the limiter and 402s follow
    ``payment_policy``; neither counts here."""
    default_headers: dict[str, str] | None = None
    """Headers added to every request."""
    cerebras_proxy: str | None = Field(default=None, exclude=True)
    """Proxy URL for the HTTP clients this instance builds (ignored when ``http_client`` is given)."""
    http_client: httpx.Client | None = Field(default=None, exclude=True, repr=False)
    """The ``httpx.Client`` to send sync requests with."""
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True, repr=False)
    """The ``httpx.AsyncClient`` to send async requests with."""

    # --- the core's policies ------------------------------------------------------------------
    tier: Literal["auto", "paygo", "free"] | None = None
    """``"auto"`` (learned from the server's first answer), ``"paygo"`` or ``"free"`` (8,192-token
    window, free limits); else ``CEREBRAS_TIER``, else auto."""
    rate_limits: dict[str, int] | None = None
    """Your limits (``{"tokens_per_minute": ..., "requests_per_day": ...}`` or a ``RateLimits``)
    when they differ from the catalog's for the tier; the response headers win once seen."""
    payment_policy: PaymentPolicy | None = Field(default=None, exclude=True)
    """What to do on 402: wait for auto-recharge up to ``max_wait``, call a hook, use a fallback key."""
    context_overflow: Literal["raise", "trim_history", "shrink_completion"] = "raise"
    """When prompt + ``max_tokens`` cannot fit the window: raise ``ContextWindowExceededError``
    before sending, drop the oldest turns, or shrink ``max_tokens``."""
    max_spend_usd: float | None = None
    """Refuse a request (``BudgetExceededError``) whose worst-case cost would cross this budget."""
    context_window: int | None = None
    """A window to use instead of the catalog's for the tier (e.g. a smaller one of your own)."""
    deadline: float | None = None
    """Seconds a whole call may take, waits, retries and the stream's last chunk included."""
    redis_url: str | None = Field(default=None, exclude=True, repr=False)
    """Share rate limits, 429 pauses, the 402 circuit, spend and budget with every process on the key
    (``CEREBRAS_PAYGO_REDIS_URL`` when not given); in-process state when neither is set. Never
    serialized or shown: the URL may hold a password."""
    redis: Any = Field(default=None, exclude=True, repr=False)
    """A ready ``redis.Redis`` / ``redis.asyncio.Redis`` / ``RedisCluster`` client instead of ``redis_url``."""
    on_backend_error: Literal["local", "raise"] = "local"
    """When Redis fails: ``"local"`` (warn, fall back to in-process state with limits and budget divided
    by ``workers``) or ``"raise"`` (``BackendUnavailableError``)."""
    workers: int = 1
    """How many processes share the key (for the ``"local"`` fallback)."""
    client: CerebrasClient | None = Field(default=None, exclude=True, repr=False)
    """A ``CerebrasClient`` to share between instances (its settings then win over the ones above)."""

    if TYPE_CHECKING:
        # The second names of two fields, typed for ``__init__`` only (pydantic takes them through
        # the ``validation_alias`` above; reading them back is ``max_tokens`` and ``stop``).
        max_completion_tokens: int | None = Field(default=None, exclude=True)
        stop_sequences: list[str] | str | None = Field(default=None, exclude=True)

    _client: CerebrasClient | None = PrivateAttr(default=None)

    @classmethod
    def from_model_id(cls, model_id: str, **kwargs: Any) -> ChatCerebras:
        """``ChatCerebras.from_model_id("cerebras:gpt-oss-120b", max_tokens=512)``: the model id as
        ``init_chat_model`` spells it (``"cerebras:"`` optional), other arguments as the constructor's."""
        provider, model = split_model_id(model_id)
        if provider is None and ":" in model:
            raise ConfigurationError(f"{model_id!r} names provider {model.split(':', 1)[0]!r}, not {PROVIDER!r}")
        return cls(model=model, **kwargs)

    # --- validation ---------------------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _build_extra(cls, values: Any) -> Any:
        """Accept langchain-cerebras' names; move unknown arguments into ``model_kwargs``."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        refused = _REFUSED_NAMES & set(values)
        if refused:
            raise ValueError(
                f"ChatCerebras does not take {sorted(refused)}: pass api_key= (or set CEREBRAS_API_KEY) and base_url="
            )
        for old, new in _LEGACY_NAMES.items():
            if old in values:
                value = values.pop(old)
                values.setdefault(new, value)
        known = _field_names(cls)
        extra = dict(values.get("model_kwargs") or {})
        for name in list(values):
            if name not in known:
                warnings.warn(
                    f"{name!r} is not a ChatCerebras parameter; it is sent to the API as part of model_kwargs",
                    UserWarning,
                    stacklevel=4,
                )
                extra[name] = values.pop(name)
        clash = known & set(extra)
        if clash:
            raise ValueError(f"pass {sorted(clash)} as constructor arguments, not inside model_kwargs")
        if extra or "model_kwargs" in values:
            values["model_kwargs"] = extra
        return values

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        from cerebras_paygo._settings import normalize_base_url

        return None if value is None else normalize_base_url(value)

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _rate_limits_as_dict(cls, value: Any) -> Any:
        from cerebras_paygo._ratelimit import RateLimits

        if isinstance(value, RateLimits):
            return value.as_dict()
        if isinstance(value, Mapping):
            return RateLimits.from_mapping(value).as_dict()
        return value

    @field_validator("tier", mode="before")
    @classmethod
    def _lower_tier(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("api_key", mode="before")
    @classmethod
    def _secret_key(cls, value: Any) -> Any:
        return secret_key(value)

    # --- LangChain metadata -------------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "cerebras-chat"

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"api_key": "CEREBRAS_API_KEY"}

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @property
    def _default_params(self) -> dict[str, Any]:
        """The request fields this instance sends on every call (``None``\\ s left out)."""
        params = {
            "model": self.model_name,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "max_completion_tokens": self.max_tokens,
            "stop": self.stop,
            "frequency_penalty": self.frequency_penalty,
            "presence_penalty": self.presence_penalty,
            "logprobs": self.logprobs,
            "top_logprobs": self.top_logprobs,
            "reasoning_effort": self.reasoning_effort,
            "reasoning_format": self.reasoning_format,
            "clear_thinking": self.clear_thinking,
            "disable_reasoning": self.disable_reasoning,
            "service_tier": self.service_tier,
        }
        return {key: value for key, value in params.items() if value is not None} | self.model_kwargs

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, **self._default_params}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="cerebras",
            ls_model_name=str(kwargs.get("model") or self.model_name),
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", kwargs.get("max_completion_tokens", self.max_tokens))
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        stops = stop if stop is not None else kwargs.get("stop", self.stop)
        # Tracing never fails a call: a bad ``stop`` is refused by the core with ConfigurationError.
        if isinstance(stops, str):
            params["ls_stop"] = [stops]
        elif isinstance(stops, (list, tuple)) and stops:
            params["ls_stop"] = [str(s) for s in stops]
        return params

    def _resolve_model_profile(self) -> ModelProfile | None:
        catalog = self.client.catalog if self.client is not None else None
        from langchain_cerebras_paygo._profiles import profile_for

        return profile_for(self.model_name, self._resolved_tier(), catalog)

    # --- the core client ----------------------------------------------------------------------

    # ``cerebras_client``, copies, pickles and ``close`` are the core's ``ClientOwner``; here only
    # which fields build the client.

    def _client_options(self) -> ClientOptions:
        from cerebras_paygo._options import ClientOptions

        return ClientOptions(
            api_key=self.api_key,
            base_url=self.base_url,
            tier=self.tier,
            timeout=self.request_timeout,
            max_retries=self.max_retries,
            deadline=self.deadline,
            rate_limits=self.rate_limits,
            payment_policy=self.payment_policy,
            context_overflow=self.context_overflow,
            context_window=self.context_window,
            max_spend_usd=self.max_spend_usd,
            http_client=self.http_client,
            async_http_client=self.http_async_client,
            default_headers=self.default_headers,
            proxy=self.cerebras_proxy,
            redis_url=self.redis_url,
            redis=self.redis,
            on_backend_error=self.on_backend_error,
            workers=self.workers,
            integration=INTEGRATION_NAME,
        )

    @model_validator(mode="after")
    def _check_options(self) -> Self:
        """Refuse bad client options and sampling values now, not at the first call."""
        if not isinstance(self.model_name, str) or not self.model_name.strip():
            raise ConfigurationError(f"model must be a model id such as 'gpt-oss-120b', not {self.model_name!r}")
        if self.client is None:
            self._client_options()
        from cerebras_paygo._options import check_sampling

        check_sampling(self._default_params)
        return self

    def _shared_on_copy(self) -> tuple[object, ...]:
        # The HTTP clients are the caller's: a deep copy uses them too (``ClientOwner`` decides
        # the rest: a copy builds its own core client, a pickle leaves it out).
        return (*super()._shared_on_copy(), self.http_client, self.http_async_client, self.redis)

    # --- requests -----------------------------------------------------------------------------

    def _build_request(
        self,
        messages: Sequence[BaseMessage],
        stop: list[str] | None = None,
        *,
        stream: bool = False,
        **kwargs: Any,
    ) -> ChatCompletionRequest:
        """The wire request: instance defaults, then ``model_kwargs``, call kwargs and ``extra_body``."""
        from cerebras_paygo._options import build_request
        from langchain_cerebras_paygo._convert import messages_to_wire

        params = self._default_params
        call = dict(kwargs)
        call.pop("stream", None)
        call.pop("stream_usage", None)
        call_extra_body = call.pop("extra_body", None)
        if "max_tokens" in call:
            call["max_completion_tokens"] = call.pop("max_tokens")
        if "model_name" in call:
            call["model"] = call.pop("model_name")
        params.update({key: value for key, value in call.items() if value is not None})
        if stop is not None:
            params["stop"] = stop
        if stream:
            # The core always asks a stream for its usage (it settles the quota and the spend);
            # ``stream_usage`` only decides whether LangChain sees it (see ``_stream_usage``).
            params["stream"] = True
        for body in (self.extra_body, call_extra_body):
            if body:
                params.update(body)
        request: ChatCompletionRequest = build_request(messages_to_wire(messages), params)
        return request

    def _stream_usage(self, kwargs: Mapping[str, Any]) -> bool:
        value = kwargs.get("stream_usage")
        return self.stream_usage if value is None else bool(value)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        from langchain_cerebras_paygo._convert import completion_to_result

        with bridged_errors():
            result = self.cerebras_client.chat(self._build_request(messages, stop, **kwargs))
        return completion_to_result(result.completion, result.info)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        from langchain_cerebras_paygo._convert import completion_to_result

        with bridged_errors():
            result = await self.cerebras_client.achat(self._build_request(messages, stop, **kwargs))
        return completion_to_result(result.completion, result.info)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        from langchain_cerebras_paygo._convert import StreamAssembler

        with bridged_errors():
            request = self._build_request(messages, stop, stream=True, **kwargs)
            assembler = StreamAssembler(usage=self._stream_usage(kwargs))
            with self.cerebras_client.stream(request) as stream:
                for item in stream:
                    chunk = assembler.feed(item, stream.info if stream.done else None)
                    if run_manager:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
                yield from assembler.finish(stream.info)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        from langchain_cerebras_paygo._convert import StreamAssembler

        with bridged_errors():
            request = self._build_request(messages, stop, stream=True, **kwargs)
            assembler = StreamAssembler(usage=self._stream_usage(kwargs))
            async with self.cerebras_client.astream(request) as stream:
                async for item in stream:
                    chunk = assembler.feed(item, stream.info if stream.done else None)
                    if run_manager:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
                for chunk in assembler.finish(stream.info):
                    yield chunk

    # --- token counting -----------------------------------------------------------------------

    def get_num_tokens_from_messages(
        self,
        messages: list[BaseMessage],
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool] | None = None,
    ) -> int:
        """Prompt tokens of ``messages`` (and ``tools``), chat template included, for ``trim_messages``.

        Exact with the ``[tokenizer]`` extra (or once the server has counted this prompt), else the
        estimator's high end: a history trimmed to N tokens is then at most N.
        """
        extra: dict[str, Any] = {}
        if tools:
            extra["tools"] = [_format_tool(tool) for tool in tools]
        return self.cerebras_client.estimator.prompt_tokens(self._build_request(messages, **extra))

    def get_num_tokens(self, text: str) -> int:
        """Tokens of ``text`` alone (no chat template): exact with the ``[tokenizer]`` extra, else the high end."""
        return self.cerebras_client.estimator.text_tokens(text, self.model_name)

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` in the model's vocabulary.

        Raises:
            ConfigurationError: the vocabulary needs ``pip install 'cerebras-paygo[tokenizer]'``.
        """
        return self.cerebras_client.estimator.token_ids(text, self.model_name)

    # --- tools and structured output ----------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: _ToolChoice = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (LangChain tools, functions, pydantic classes, TypedDicts or JSON schemas).

        Args:
            tools: the tools the model may call.
            tool_choice: ``"auto"``, ``"none"``, ``"required"`` (or ``"any"``), a tool's name,
                ``True`` (the only tool), or an OpenAI-style ``{"type": "function", ...}`` dict.
            strict: ``True`` asks Cerebras for constrained decoding of the arguments.
            parallel_tool_calls: sent as given (``None``: the model's default).
            kwargs: other request fields.

        Raises:
            ValueError: ``tool_choice=True`` with more than one tool, or an unknown tool name.
        """
        formatted = [_format_tool(tool, strict=strict) for tool in tools]
        choice = _tool_choice(tool_choice, formatted)
        if choice is not None:
            kwargs["tool_choice"] = choice
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: Literal["json_schema", "function_calling", "json_mode"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """A runnable that returns ``schema``-shaped output (a pydantic object or a dict).

        Args:
            schema: a pydantic class (v1 or v2), a TypedDict or a JSON schema; optional for
                ``json_mode``.
            method: ``"json_schema"`` (default: ``response_format`` with constrained decoding),
                ``"function_calling"`` (a forced tool call) or ``"json_mode"`` (any JSON object;
                describe the keys in the prompt).
            include_raw: return ``{"raw": AIMessage, "parsed": ..., "parsing_error": ...}``
                instead of raising on a parsing error.
            strict: constrained decoding (``None`` means ``True`` for ``json_schema`` and
                ``function_calling``). The schema is made Cerebras-strict: objects closed, every
                property required, optional ones nullable; the parser drops those ``null``\\ s
                again, so optional fields keep their defaults. A schema strict mode cannot
                express (free-form ``dict`` fields, ``Any``, unions of more than five types) is
                sent with ``strict: false``.
            kwargs: other request fields for the bound model.

        Raises:
            ValueError: an unknown ``method``, a missing ``schema``, or ``strict`` with ``json_mode``.
        """
        from langchain_cerebras_paygo._structured import (
            StrictJsonOutputParser,
            StrictToolArgsParser,
            pydantic_class,
            response_format_for,
            strict_tool_function,
        )

        if kwargs.get("tools"):
            raise ValueError("with_structured_output does not take tools; use bind_tools for tool calling")
        pydantic_object = pydantic_class(schema)
        # Tracing metadata: langchain-core reads ``["schema"]`` whenever the dict is non-empty, so
        # without a schema (``json_mode``) nothing is bound at all (it would be a KeyError).
        ls_bind: dict[str, Any] = {}
        if schema is not None:
            ls_bind["ls_structured_output_format"] = {
                "kwargs": {"method": method, "strict": strict},
                "schema": convert_to_json_schema(schema),
            }
        llm: Runnable[LanguageModelInput, Any]
        output_parser: Runnable[Any, Any]
        if method == "json_schema":
            if schema is None:
                raise ValueError("method='json_schema' needs a schema")
            response_format, parameters = response_format_for(schema, strict=True if strict is None else strict)
            llm = self.bind(response_format=response_format, **ls_bind, **kwargs)
            output_parser = StrictJsonOutputParser(strip_schema=parameters, pydantic_object=pydantic_object)
        elif method == "function_calling":
            if schema is None:
                raise ValueError("method='function_calling' needs a schema")
            tool_function, parameters = strict_tool_function(schema, strict=True if strict is None else strict)
            name = tool_function["name"]
            llm = self.bind(
                tools=[{"type": "function", "function": tool_function}],
                tool_choice={"type": "function", "function": {"name": name}},
                **ls_bind,
                **kwargs,
            )
            output_parser = StrictToolArgsParser(
                key_name=name, first_tool_only=True, strip_schema=parameters, pydantic_object=pydantic_object
            )
        elif method == "json_mode":
            if strict is not None:
                raise ValueError("strict does not apply to method='json_mode'; use method='json_schema'")
            llm = self.bind(response_format={"type": "json_object"}, **ls_bind, **kwargs)
            output_parser = StrictJsonOutputParser(pydantic_object=pydantic_object)
        else:
            raise ValueError(f"unknown method {method!r}; use 'json_schema', 'function_calling' or 'json_mode'")
        if not include_raw:
            return llm | output_parser
        parser_assign = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | output_parser, parsing_error=lambda _: None
        )
        parser_none = RunnablePassthrough.assign(parsed=lambda _: None)
        parser_with_fallback = parser_assign.with_fallbacks([parser_none], exception_key="parsing_error")
        return RunnableMap(raw=llm) | parser_with_fallback


def _format_tool(tool: Any, *, strict: bool | None = None) -> dict[str, Any]:
    formatted = convert_to_openai_tool(tool, strict=strict)
    function = formatted.get("function")
    if isinstance(function, dict) and function.get("description") == dict.__doc__:
        # A TypedDict without a docstring inherits dict's; it does not describe the tool.
        formatted = {**formatted, "function": {k: v for k, v in function.items() if k != "description"}}
    return formatted


def _tool_choice(tool_choice: _ToolChoice, tools: list[dict[str, Any]]) -> str | dict[str, Any] | None:
    """LangChain's ``tool_choice`` -> the API's; ``True`` forces the single bound tool."""
    if tool_choice is None or tool_choice is False:
        return None
    names = [tool["function"]["name"] for tool in tools if "function" in tool]
    if tool_choice is True:
        if len(names) != 1:
            raise ConfigurationError(f"tool_choice=True needs exactly one tool, got {len(names)}")
        return forced_tool(names[0])
    return api_tool_choice(tool_choice, names)


_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> frozenset[str]:
    """Field names and aliases of ``cls`` (cached: construction must stay cheap)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        collected: set[str] = set()
        for name, info in get_fields(cls).items():
            collected.add(name)
            if info.alias:
                collected.add(info.alias)
            if isinstance(info.validation_alias, AliasChoices):
                collected.update(c for c in info.validation_alias.choices if isinstance(c, str))
            elif isinstance(info.validation_alias, str):
                collected.add(info.validation_alias)
        names = frozenset(collected)
        _FIELD_NAMES[cls] = names
    return names
