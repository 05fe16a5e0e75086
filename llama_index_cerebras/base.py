"""``Cerebras``: a LlamaIndex ``FunctionCallingLLM`` over the cerebras-paygo core.

Every call goes through ``cerebras_paygo.CerebrasClient``, so rate limits (requests and tokens per
minute, hour and day, shared by every instance in the process), 402 handling, context-window
checks, retries and spend tracking apply to all eight chat/complete methods, to tool calling,
agents and structured output alike. This module only translates (see ``_convert`` and
``_schema``); no decision about reserving, waiting, retrying or cutting is made here.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.events.llm import LLMStructuredPredictEndEvent, LLMStructuredPredictStartEvent
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.program.streaming_utils import process_streaming_content_incremental
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import ToolMetadata
from llama_index.core.types import Model, PydanticProgramMode
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, field_validator, model_validator
from typing_extensions import Self

from cerebras_paygo._adapters import ClientOwner, env_base_url_or_default, secret_key
from cerebras_paygo.errors import ConfigurationError
from llama_index_cerebras._schema import parse_output, response_format_for

if TYPE_CHECKING:
    # Named by annotations and imported where used: importing this module leaves the core
    # unimported until the first instance (see ``cerebras_paygo._adapters``).
    import httpx
    from llama_index.core.program.utils import FlexibleModel
    from llama_index.core.tools.types import BaseTool

    from cerebras_paygo import CerebrasClient, PaymentPolicy
    from cerebras_paygo._catalog import Catalog, ModelSpec
    from cerebras_paygo._options import ClientOptions
    from cerebras_paygo._wire import ChatCompletionRequest
    from llama_index_cerebras._convert import StreamFolder, _Folded

    #: What a structured stream yields: partial objects, then the whole one.
    _Partial: TypeAlias = "Model | list[Model] | FlexibleModel | list[FlexibleModel]"

__all__ = ["Cerebras"]

logger = logging.getLogger("llama_index_cerebras")
dispatcher = get_dispatcher(__name__)

DEFAULT_MODEL = "gpt-oss-120b"
INTEGRATION_NAME = "llama-index-cerebras-paygo"

# Constructor names of llama-index-llms-cerebras / OpenAILike -> ours.
_LEGACY_NAMES = {"api_base": "base_url", "request_timeout": "timeout"}
# Their metadata switches: ours come from the catalog, so these are dropped (with a warning)
# rather than sent to the API.
_CATALOG_DECIDES = frozenset({"is_chat_model", "is_function_calling_model", "should_use_structured_outputs"})


class Cerebras(ClientOwner, FunctionCallingLLM):
    """Cerebras models (PayGo and free tier) for LlamaIndex.

    Stays inside the API's limits: requests and tokens per minute/hour/day are reserved before
    sending and shared by every instance in the process (so ``asyncio.gather`` of a hundred
    ``achat`` calls sees no 429), ``402 Payment Required`` follows a payment policy, prompts that
    cannot fit the model's window fail before any request, and each response says what it cost.

    ``metadata`` comes from the model catalog: the context window of your tier (131,072 tokens
    on PayGo for ``gpt-oss-120b``, 8,192 on the free tier) and function calling, so
    ``FunctionAgent``, ``predict_and_call`` and ``structured_predict`` work out of the box.

    Setup:
        ``pip install "cerebras-paygo[llama-index]"`` and ``export CEREBRAS_API_KEY=csk-...``
        (``OPENAI_API_KEY`` is never read).

    Example:
        .. code-block:: python

            from llama_index.core import Settings
            from llama_index_cerebras import Cerebras

            Settings.llm = Cerebras(model="gpt-oss-120b", max_tokens=1024)
            response = Settings.llm.complete("Say hi in Portuguese")
            response.text                                # 'Olá!'
            response.additional_kwargs["total_tokens"]   # 31
            response.additional_kwargs["cost_usd"]       # 1.07e-05
    """

    # defer_build: the first instance builds the validator (``ClientOwner.complete_model``).
    model_config = ConfigDict(defer_build=True)

    # --- model and sampling -------------------------------------------------------------------
    model: str = Field(default=DEFAULT_MODEL, description="Model id, for instance 'gpt-oss-120b' or 'zai-glm-4.7'.")
    temperature: float | None = Field(
        default=None, ge=0.0, le=2.0, description="Sampling temperature (the model's default when unset)."
    )
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Most tokens to generate, reasoning included (sent as max_completion_tokens). Cerebras reserves "
            "all of it against the tokens-per-minute quota; unset, the catalog's default for the model and "
            "tier is sent rather than the model's maximum."
        ),
    )
    reasoning_effort: Literal["none", "low", "medium", "high"] | None = Field(
        default=None, description="How hard a reasoning model thinks; 'none' turns reasoning off where allowed."
    )
    reasoning_format: Literal["parsed", "text_parsed", "raw", "hidden", "none"] | None = Field(
        default=None,
        description="Where reasoning goes: parsed/text_parsed (a ThinkingBlock), raw (in the text), hidden (dropped).",
    )
    additional_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Other request fields (top_p, seed, stop, service_tier ...), sent as given."
    )

    # --- client -------------------------------------------------------------------------------
    # ``str`` in the annotation only so ``api_key="csk-..."`` type-checks; stored as ``SecretStr``.
    api_key: SecretStr | str | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description=(
            "The Cerebras key; CEREBRAS_API_KEY when not given (read at the first call). Never serialized. "
            "A missing key fails at the first call with MissingAPIKeyError, never by sending another key."
        ),
    )
    base_url: str = Field(
        default_factory=env_base_url_or_default,
        validate_default=True,
        description=(
            "API root; else CEREBRAS_BASE_URL (or CEREBRAS_API_BASE, read when the instance is built), "
            "else https://api.cerebras.ai/v1."
        ),
    )
    timeout: float | None = Field(default=None, description="HTTP timeout in seconds (default 60 s, connect 5 s).")
    deadline: float | None = Field(
        default=None,
        description="Seconds a whole call may take: waits, retries and a stream's last chunk included.",
    )
    http_client: httpx.Client | None = Field(
        default=None, exclude=True, repr=False, description="The httpx.Client to send sync requests with."
    )
    async_http_client: httpx.AsyncClient | None = Field(
        default=None, exclude=True, repr=False, description="The httpx.AsyncClient to send async requests with."
    )
    default_headers: dict[str, str] | None = Field(default=None, description="Headers added to every request.")
    redis_url: str | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description=(
            "Share rate limits, 429 pauses, the 402 circuit, spend and budget with every process on the key "
            "(CEREBRAS_PAYGO_REDIS_URL when not given); in-process state when neither is set."
        ),
    )
    redis: Any = Field(default=None, exclude=True, repr=False, description="A ready redis client instead of redis_url.")
    on_backend_error: Literal["local", "raise"] = Field(
        default="local", description="When Redis fails: 'local' (warn, fall back, divided by workers) or 'raise'."
    )
    workers: int = Field(default=1, description="How many processes share the key (for the local fallback).")
    max_retries: int = Field(
        default=2,
        ge=0,
        description="Retries of 5xx and connection failures; 429s are waited out and 402s follow payment_policy.",
    )

    # --- the core's policies ------------------------------------------------------------------
    tier: Literal["auto", "paygo", "free"] | None = Field(
        default=None,
        description=(
            "'auto' (learned from the server's first answer), 'paygo' or 'free' (8,192-token window, free limits);"
            " else CEREBRAS_TIER, else auto."
        ),
    )
    rate_limits: dict[str, int] | None = Field(
        default=None,
        description=(
            "Your limits ({'tokens_per_minute': ..., ...}) when they differ from the catalog's; headers win once seen."
        ),
    )
    payment_policy: PaymentPolicy | None = Field(
        default=None, exclude=True, description="What to do on 402: wait for auto-recharge, call a hook, fall back."
    )
    context_overflow: Literal["raise", "trim_history", "shrink_completion"] = Field(
        default="raise",
        description="When prompt + max_tokens cannot fit: raise before sending, drop old turns, or shrink max_tokens.",
    )
    context_window: int | None = Field(
        default=None, gt=0, description="A window to use instead of the catalog's for the tier."
    )
    max_spend_usd: float | None = Field(
        default=None, ge=0, description="Refuse requests whose worst-case cost would cross this budget (USD)."
    )
    client: CerebrasClient | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="A CerebrasClient to share between instances (its settings then win over the ones above).",
    )

    if TYPE_CHECKING:
        # llama-index-llms-cerebras' names, typed for ``__init__`` (the "before" validator maps them
        # to ``base_url`` and ``timeout``); at runtime ``api_base`` reads ``base_url``.
        api_base: str | None = Field(default=None, exclude=True)
        request_timeout: float | None = Field(default=None, exclude=True)
    else:

        @property
        def api_base(self) -> str:
            """``base_url`` under llama-index-llms-cerebras' (OpenAILike's) name."""
            return self.base_url

    _client: CerebrasClient | None = PrivateAttr(default=None)

    # --- validation ---------------------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _legacy_and_extra(cls, values: Any) -> Any:
        """Accept llama-index-llms-cerebras' names; unknown arguments become request fields."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        values.pop("class_name", None)
        for old, new in _LEGACY_NAMES.items():
            if old in values:
                values.setdefault(new, values.pop(old))
        known = set(cls.model_fields)
        extra = dict(values.get("additional_kwargs") or {})
        for name in list(values):
            if name in known:
                continue
            value = values.pop(name)
            if name in _CATALOG_DECIDES:
                warnings.warn(
                    f"Cerebras ignores {name}={value!r}: it comes from the model catalog", UserWarning, stacklevel=4
                )
                continue
            warnings.warn(
                f"{name!r} is not a Cerebras parameter; it is sent to the API in additional_kwargs",
                UserWarning,
                stacklevel=4,
            )
            extra[name] = value
        if extra:
            values["additional_kwargs"] = extra
        return values

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        from cerebras_paygo._settings import normalize_base_url

        return normalize_base_url(value)

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

    @model_validator(mode="after")
    def _known_model(self) -> Self:
        if not self.model or not self.model.strip():
            raise ConfigurationError("model must be a model id such as 'gpt-oss-120b', not an empty string")
        self._catalog().get(self.model)  # an UnknownModelWarning now rather than at the first call
        if self.client is None:
            self._client_options()  # bad client options raise ConfigurationError now, not at the first call
        from cerebras_paygo._options import check_sampling

        check_sampling(
            {"temperature": self.temperature, "max_completion_tokens": self.max_tokens, **self.additional_kwargs}
        )
        return self

    @classmethod
    def class_name(cls) -> str:
        return "Cerebras"

    # --- catalog and metadata -----------------------------------------------------------------

    def _catalog(self) -> Catalog:
        from cerebras_paygo._catalog import default_catalog

        return self.client.catalog if self.client is not None else default_catalog()

    def _spec(self) -> ModelSpec:
        return self._catalog().get(self.model, warn=False)

    @property
    def metadata(self) -> LLMMetadata:
        """Window and output from the catalog for the tier; function calling when the model has tools."""
        spec = self._spec()
        tier = self._resolved_tier()
        window = self.context_window
        if self.client is not None:
            window = self.client.context_window
        return LLMMetadata(
            context_window=window or spec.window(tier),
            num_output=self.max_tokens or spec.default_completion(tier),
            is_chat_model=True,
            is_function_calling_model=spec.capabilities.tools,
            model_name=self.model,
            system_role=MessageRole.SYSTEM,
        )

    # --- the core client ----------------------------------------------------------------------

    # ``cerebras_client``, copies, pickles and ``close`` are the core's ``ClientOwner``; here only
    # which fields build the client.

    def _client_options(self) -> ClientOptions:
        from cerebras_paygo._options import ClientOptions

        return ClientOptions(
            api_key=self.api_key,
            base_url=self.base_url,
            tier=self.tier,
            timeout=self.timeout,
            max_retries=self.max_retries,
            deadline=self.deadline,
            rate_limits=self.rate_limits,
            payment_policy=self.payment_policy,
            context_overflow=self.context_overflow,
            context_window=self.context_window,
            max_spend_usd=self.max_spend_usd,
            http_client=self.http_client,
            async_http_client=self.async_http_client,
            default_headers=self.default_headers,
            redis_url=self.redis_url,
            redis=self.redis,
            on_backend_error=self.on_backend_error,
            workers=self.workers,
            integration=INTEGRATION_NAME,
        )

    def _shared_on_copy(self) -> tuple[object, ...]:
        # The HTTP clients are the caller's: a deep copy uses them too.
        return (*super()._shared_on_copy(), self.http_client, self.async_http_client, self.redis)

    # --- requests -----------------------------------------------------------------------------

    def _request(
        self, messages: Sequence[ChatMessage], *, stream: bool = False, **kwargs: Any
    ) -> ChatCompletionRequest:
        """The wire request: instance fields, ``additional_kwargs``, then the call's kwargs."""
        from cerebras_paygo._options import build_request
        from llama_index_cerebras._convert import messages_to_wire

        params: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            "max_completion_tokens": self.max_tokens,
            "reasoning_effort": self.reasoning_effort,
            "reasoning_format": self.reasoning_format,
        }
        params = {key: value for key, value in params.items() if value is not None}
        params.update(self.additional_kwargs)
        call = dict(kwargs)
        call.pop("formatted", None)
        call.pop("stream", None)
        if "max_tokens" in call:
            call["max_completion_tokens"] = call.pop("max_tokens")
        params.update({key: value for key, value in call.items() if value is not None})
        if stream:
            params["stream"] = True  # the core asks for the stream's usage (stream_options)
        request: ChatCompletionRequest = build_request(messages_to_wire(messages), params)
        return request

    # --- token counting -----------------------------------------------------------------------

    @property
    def tokenizer(self) -> Callable[[str], list[int]]:
        """``str -> list[int]`` for ``Settings.tokenizer`` and ``ChatMemoryBuffer(tokenizer_fn=...)``.

        The model's token ids with the ``[tokenizer]`` extra; without it, a list whose length is the
        estimator's high end (what a memory buffer needs to cut safely), of zeros.
        """
        return self.cerebras_client.estimator.tokenizer(self.model)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` alone: exact with the ``[tokenizer]`` extra, else the high end."""
        return self.cerebras_client.estimator.text_tokens(text, self.model)

    def count_message_tokens(self, messages: Sequence[ChatMessage], **kwargs: Any) -> int:
        """Prompt tokens of ``messages`` as sent (chat template included): exact, else the high end."""
        return self.cerebras_client.estimator.prompt_tokens(self._request(messages, **kwargs))

    # --- chat ---------------------------------------------------------------------------------

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat(messages, **kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._achat(messages, **kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._stream_chat(messages, **kwargs)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        return self._astream_chat(messages, **kwargs)

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        from llama_index_cerebras._convert import completion_to_response

        result = self.cerebras_client.chat(self._request(messages, **kwargs))
        return completion_to_response(result.completion, result.info)

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        from llama_index_cerebras._convert import completion_to_response

        result = await self.cerebras_client.achat(self._request(messages, **kwargs))
        return completion_to_response(result.completion, result.info)

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        from llama_index_cerebras._convert import StreamFolder

        return self._stream_folded(StreamFolder(), messages, **kwargs)

    def _stream_folded(
        self, folder: StreamFolder[_Folded], messages: Sequence[ChatMessage], **kwargs: Any
    ) -> Generator[_Folded, None, None]:
        """The call's stream through ``folder`` (chat responses, or completions for ``stream_complete``)."""
        request = self._request(messages, stream=True, **kwargs)
        client = self.cerebras_client

        def gen() -> Generator[_Folded, None, None]:
            # Stopping early closes the stream, which settles the core's booking at once.
            with client.stream(request) as stream:
                for chunk in stream:
                    response = folder.feed(chunk, stream.info if stream.done else None)
                    if response is not None:
                        yield response
                tail = folder.finish(stream.info)
            if tail is not None:
                yield tail

        return gen()

    def _astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        from llama_index_cerebras._convert import StreamFolder

        return self._astream_folded(StreamFolder(), messages, **kwargs)

    def _astream_folded(
        self, folder: StreamFolder[_Folded], messages: Sequence[ChatMessage], **kwargs: Any
    ) -> AsyncGenerator[_Folded, None]:
        request = self._request(messages, stream=True, **kwargs)
        client = self.cerebras_client

        async def gen() -> AsyncGenerator[_Folded, None]:
            async with client.astream(request) as stream:
                async for chunk in stream:
                    response = folder.feed(chunk, stream.info if stream.done else None)
                    if response is not None:
                        yield response
                tail = folder.finish(stream.info)
            if tail is not None:
                yield tail

        return gen()

    # --- complete (a single user turn through chat) --------------------------------------------

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return _to_completion(self._chat(_prompt_messages(prompt), **kwargs))

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return _to_completion(await self._achat(_prompt_messages(prompt), **kwargs))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        from llama_index_cerebras._convert import StreamFolder

        return cast(
            CompletionResponseGen,
            self._stream_folded(StreamFolder(completion=True), _prompt_messages(prompt), **kwargs),
        )

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        from llama_index_cerebras._convert import StreamFolder

        return cast(
            CompletionResponseAsyncGen,
            self._astream_folded(StreamFolder(completion=True), _prompt_messages(prompt), **kwargs),
        )

    # --- tools --------------------------------------------------------------------------------

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The ``chat`` arguments for a turn with tools.

        Args:
            tools: the tools the model may call.
            user_msg, chat_history: the conversation (``chat_history`` is not modified).
            allow_parallel_tool_calls: sent as ``parallel_tool_calls`` to models that can call
                tools in parallel; otherwise the response is cut to its first call.
            tool_required: the model must call a tool (``tool_choice="required"``).
            tool_choice: ``"auto"``, ``"none"``, ``"required"``, a tool's name, or an API dict.
            strict: ``True`` asks for constrained decoding of the arguments (when the tool's
                schema allows it); ``False`` is sent as such; ``None`` leaves the API default.
            kwargs: other request fields.
        """
        if isinstance(tools, (str, bytes)) or not isinstance(tools, Sequence):
            raise ConfigurationError(f"tools must be a list of LlamaIndex tools, not {tools!r}")
        for tool in tools:
            if not isinstance(getattr(tool, "metadata", None), ToolMetadata):
                raise ConfigurationError(f"a tool must be a LlamaIndex BaseTool (FunctionTool...), not {tool!r}")
        specs = [self._tool_spec(tool, strict) for tool in tools]
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        prepared: dict[str, Any] = {"messages": messages}
        if specs:
            names = [spec["function"]["name"] for spec in specs]
            prepared["tools"] = specs
            from llama_index_cerebras._convert import tool_choice_for

            prepared["tool_choice"] = tool_choice_for(tool_choice, tool_required, names)
            if self._spec().capabilities.parallel_tool_calls:
                prepared["parallel_tool_calls"] = allow_parallel_tool_calls
        prepared.update(kwargs)
        return prepared

    @staticmethod
    def _tool_spec(tool: BaseTool, strict: bool | None) -> dict[str, Any]:
        from cerebras_paygo._structured import strict_function

        spec = tool.metadata.to_openai_tool(skip_length_check=True)
        function = strict_function(spec["function"], strict=strict)
        if strict and not function["strict"]:
            logger.warning("tool %s: its schema cannot be made strict; sending it with strict=false", function["name"])
        return {**spec, "function": function}

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        from llama_index_cerebras._convert import first_call_only

        if not allow_parallel_tool_calls:
            response.message = first_call_only(response.message)
        return response

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        **kwargs: Any,
    ) -> list[ToolSelection]:
        """The response's tool calls (arguments parsed; empty or unparsable arguments are ``{}``).

        Raises:
            ValueError: no tool call while ``error_on_no_tool_call`` is set.
        """
        from llama_index_cerebras._convert import tool_selections

        selections = tool_selections(response.message)
        if not selections and error_on_no_tool_call:
            raise ValueError("Expected at least one tool call, but got 0 tool calls.")
        return selections

    # --- structured output --------------------------------------------------------------------

    def _uses_json_schema(self) -> bool:
        return self.pydantic_program_mode == PydanticProgramMode.DEFAULT and self._spec().capabilities.json_schema

    @staticmethod
    def _schema_kwargs(output_cls: type[Model], llm_kwargs: dict[str, Any] | None) -> dict[str, Any]:
        kwargs = dict(llm_kwargs or {})
        for name in ("tool_choice", "tool_required", "tools"):
            kwargs.pop(name, None)
        kwargs["response_format"] = response_format_for(output_cls)
        return kwargs

    @dispatcher.span
    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """``output_cls`` from the model: ``response_format=json_schema`` (strict where the schema
        allows) when the catalog says the model supports it, else LlamaIndex's function-calling
        program."""
        if not self._uses_json_schema():
            result: Model = super().structured_predict(output_cls, prompt, llm_kwargs=llm_kwargs, **prompt_args)
            return result
        dispatcher.event(
            LLMStructuredPredictStartEvent(output_cls=output_cls, template=prompt, template_args=prompt_args)
        )
        messages = self._extend_messages(prompt.format_messages(**prompt_args))
        response = self.chat(messages, **self._schema_kwargs(output_cls, llm_kwargs))
        result = parse_output(output_cls, response.message.content)
        dispatcher.event(LLMStructuredPredictEndEvent(output=result))
        return result

    @dispatcher.span
    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Async ``structured_predict``."""
        if not self._uses_json_schema():
            result: Model = await super().astructured_predict(output_cls, prompt, llm_kwargs=llm_kwargs, **prompt_args)
            return result
        dispatcher.event(
            LLMStructuredPredictStartEvent(output_cls=output_cls, template=prompt, template_args=prompt_args)
        )
        messages = self._extend_messages(prompt.format_messages(**prompt_args))
        response = await self.achat(messages, **self._schema_kwargs(output_cls, llm_kwargs))
        result = parse_output(output_cls, response.message.content)
        dispatcher.event(LLMStructuredPredictEndEvent(output=result))
        return result

    def _structured_stream_call(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Generator[_Partial[Model], None, None]:
        if not self._uses_json_schema():
            return super()._structured_stream_call(output_cls, prompt, llm_kwargs, **prompt_args)
        messages = self._extend_messages(prompt.format_messages(**prompt_args))
        responses = self.stream_chat(messages, **self._schema_kwargs(output_cls, llm_kwargs))

        def gen() -> Generator[_Partial[Model], None, None]:
            current: Model | FlexibleModel | None = None
            last: ChatResponse | None = None
            for response in responses:
                last = response
                current = process_streaming_content_incremental(response, output_cls, current)
                yield current
            if last is not None:
                yield parse_output(output_cls, last.message.content)

        return gen()

    async def _structured_astream_call(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> AsyncGenerator[_Partial[Model], None]:
        if not self._uses_json_schema():
            return await super()._structured_astream_call(output_cls, prompt, llm_kwargs, **prompt_args)
        messages = self._extend_messages(prompt.format_messages(**prompt_args))
        responses = await self.astream_chat(messages, **self._schema_kwargs(output_cls, llm_kwargs))

        async def gen() -> AsyncGenerator[_Partial[Model], None]:
            current: Model | FlexibleModel | None = None
            last: ChatResponse | None = None
            async for response in responses:
                last = response
                current = process_streaming_content_incremental(response, output_cls, current)
                yield current
            if last is not None:
                yield parse_output(output_cls, last.message.content)

        return gen()


def _prompt_messages(prompt: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=prompt)]


def _to_completion(response: ChatResponse) -> CompletionResponse:
    """A chat response as a completion: the text, and the message's extras (reasoning) merged in."""
    return CompletionResponse(
        text=response.message.content or "",
        delta=response.delta,
        raw=response.raw,
        logprobs=response.logprobs,
        additional_kwargs={**response.message.additional_kwargs, **response.additional_kwargs},
    )
