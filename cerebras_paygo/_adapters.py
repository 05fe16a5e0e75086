"""What the framework adapters' models share besides the gateway: owning the ``CerebrasClient``.

LangChain's ``ChatCerebras`` and LlamaIndex's ``Cerebras`` are pydantic models whose fields
configure one core client. ``ClientOwner`` decides once how that client lives, so that a copy,
a pickle or a ``close`` means the same thing in both frameworks.

Importing an adapter does not import the core (httpx, the call flow, the wire models): the
model's annotations name those types for the type checker only, and the first instance (or
``model_validate``, ``model_construct``, an unpickling, another model's field of this type)
completes the class with them (``complete_model``).
So ``from langchain_cerebras_paygo import ChatCerebras`` costs about what LangChain's own
import does; the core's import is paid once, by the first ``ChatCerebras(...)``.
"""

from __future__ import annotations

import pickle
import threading
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, ValidationError

if TYPE_CHECKING:
    from pydantic import BaseModel as _Model
    from typing_extensions import Self

    from cerebras_paygo._catalog import Tier
    from cerebras_paygo._client import CerebrasClient
    from cerebras_paygo._options import ClientOptions
    from cerebras_paygo._payment import PaymentPolicy
else:
    _Model = object  # a plain mixin at run time: the adapter's own pydantic base does the rest

__all__ = ["ClientOwner", "core_types", "env_api_key", "env_base_url_or_default", "secret_key"]

_BUILD_LOCK = threading.Lock()  # building a client is rare: one lock for every instance
_COMPLETE_LOCK = threading.RLock()
_completing: set[type] = set()  # classes inside their model_rebuild (it asks for their own schema)


def env_api_key() -> SecretStr | None:
    """``CEREBRAS_API_KEY`` (the ``api_key`` fields' default), without importing the core first."""
    from cerebras_paygo._settings import env_api_key as read

    return read()


def env_base_url_or_default() -> str:
    """``CEREBRAS_BASE_URL`` (or ``CEREBRAS_API_BASE``), else the public API root."""
    from cerebras_paygo._settings import DEFAULT_BASE_URL, env_base_url

    return env_base_url() or DEFAULT_BASE_URL


def core_types() -> dict[str, Any]:
    """The core types the adapters' field annotations name (imported here, at first use)."""
    import httpx

    from cerebras_paygo._client import CerebrasClient
    from cerebras_paygo._payment import PaymentPolicy

    return {"httpx": httpx, "CerebrasClient": CerebrasClient, "PaymentPolicy": PaymentPolicy}


def secret_key(value: Any) -> Any:
    """An ``api_key`` field's value as stored: a ``str`` becomes a ``SecretStr`` (an empty one,
    ``None``); anything else is left for the field's own validation."""
    if isinstance(value, str):
        return SecretStr(value) if value else None
    return value


class ClientOwner(_Model):
    """Mixin (listed before the framework's base class) for an adapter model that owns a core client.

    The model declares the fields ``client`` (a ``CerebrasClient`` to share, or ``None``),
    ``tier`` and ``payment_policy``, the private attribute
    ``_client: CerebrasClient | None = PrivateAttr(default=None)``, and ``_client_options()``
    (its fields as the core's ``ClientOptions``, under the framework's names).

    * Bad arguments raise ``ConfigurationError`` (a ``ValueError``), never pydantic's wrapper.

    * ``cerebras_client`` is ``client`` when given, else one built lazily from the fields (once,
      under a lock) and kept, unless it has no key: its call raises ``MissingAPIKeyError`` and the
      next call reads ``CEREBRAS_API_KEY`` again.
    * A copy (``model_copy``, ``copy.copy``, ``copy.deepcopy``) builds its own client, because its
      fields may differ. A deep copy shares ``client``, ``payment_policy`` (its hook may be a bound
      method: copying it would copy the object it reports to) and what ``_shared_on_copy`` adds.
    * A pickle leaves the built client and the key out (the key is read from ``CEREBRAS_API_KEY``
      again after unpickling; an instance with a fallback key refuses to be pickled).
    * ``close``/``aclose`` close the built client only (a shared ``client`` belongs to whoever made it).
    """

    if TYPE_CHECKING:
        client: CerebrasClient | None
        tier: str | None
        payment_policy: PaymentPolicy | None
        _client: CerebrasClient | None

    def __init__(self, **data: Any) -> None:
        type(self).complete_model()
        try:
            super().__init__(**data)
        except ValidationError as exc:
            from cerebras_paygo._options import configuration_error

            # One typed error (a ValueError too) rather than pydantic's wrapper, in both frameworks.
            raise configuration_error(exc, type(self).__name__) from None

    @classmethod
    def complete_model(cls) -> None:
        """Resolve the annotations that name core types (see the module doc); once per class."""
        if cls.__pydantic_complete__:
            return
        with _COMPLETE_LOCK:
            if cls.__pydantic_complete__ or cls in _completing:
                return
            _completing.add(cls)
            try:
                cls.model_rebuild(_types_namespace=core_types())
            finally:
                _completing.discard(cls)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        cls.complete_model()
        return super().model_validate(obj, *args, **kwargs)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, *args: Any, **kwargs: Any) -> Self:
        cls.complete_model()
        return super().model_validate_json(json_data, *args, **kwargs)

    @classmethod
    def model_construct(cls, *args: Any, **kwargs: Any) -> Self:
        cls.complete_model()
        return super().model_construct(*args, **kwargs)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        # Another pydantic model with a field of this type needs its schema: complete it first.
        cls.complete_model()
        return handler(source)

    def __setstate__(self, state: dict[Any, Any]) -> None:
        type(self).complete_model()  # unpickled in a process that has not built an instance yet
        super().__setstate__(state)

    def _client_options(self) -> ClientOptions:
        """The core client's options from this instance's fields (validated)."""
        raise NotImplementedError

    def _build_client(self) -> CerebrasClient:
        """The core client for this instance's fields."""
        client: CerebrasClient = self._client_options().build()
        return client

    def _shared_on_copy(self) -> tuple[object, ...]:
        """What a deep copy shares rather than copies (a subclass adds its connection objects)."""
        return (self.client, self.payment_policy)

    @property
    def cerebras_client(self) -> CerebrasClient:
        """The core client every call goes through: ``client=`` if given, else built once, lazily.

        A client built without a key is not kept: its call raises ``MissingAPIKeyError``, and the
        next call reads ``CEREBRAS_API_KEY`` again.
        """
        if self.client is not None:
            return self.client
        built = self._client
        if built is not None:
            return built
        with _BUILD_LOCK:
            if self._client is not None:
                return self._client
            client = self._build_client()
            if client.settings.api_key is not None:
                self._client = client
            return client

    def _resolved_tier(self) -> Tier:
        """The tier whose window the framework is told about (LangChain's profile, LlamaIndex's
        metadata): the client's, configured or learned from its first answer under ``"auto"``;
        before that, ``tier`` / ``CEREBRAS_TIER``, and PayGo's for ``"auto"`` (a free key's first
        too-long prompt is refused by the server, which teaches the client the free tier)."""
        client = self.client if self.client is not None else self._client
        if client is not None:
            return client.tier
        from cerebras_paygo._settings import env_tier, parse_tier

        tier = parse_tier(self.tier) if self.tier is not None else env_tier()
        return "free" if tier == "free" else "paygo"

    def __copy__(self) -> Self:
        copied = super().__copy__()
        copied._client = None
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        memo = {} if memo is None else memo
        if self._client is not None:
            memo[id(self._client)] = None
        for shared in self._shared_on_copy():
            if shared is not None:
                memo[id(shared)] = shared
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        """A pickle holds no secret: the key is left out (the unpickled instance reads
        ``CEREBRAS_API_KEY`` at its first call), and an instance with a fallback key refuses."""
        policy = self.payment_policy
        if policy is not None and policy.fallback_api_key is not None:
            raise pickle.PicklingError(
                f"{type(self).__name__} with a PaymentPolicy(fallback_api_key=...) cannot be pickled: the pickle "
                "would carry the key; build the instance in the worker process instead"
            )
        state = super().__getstate__()
        private = state.get("__pydantic_private__")
        if private:
            state["__pydantic_private__"] = {**private, "_client": None}
        fields = state.get("__dict__")
        if isinstance(fields, dict) and fields.get("api_key") is not None:
            state["__dict__"] = {**fields, "api_key": None}
        return state

    def close(self) -> None:
        """Close the connections of a client this instance built (a shared ``client`` stays open)."""
        if self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Async ``close``."""
        if self._client is not None:
            await self._client.aclose()
