"""Token estimation: fast, conservative, and calibrated per model from real ``usage.prompt_tokens``.

No tokenizer is downloaded and nothing heavy is imported. A text is counted by one UTF-8 encode,
one byte-table ``translate`` into character classes and a handful of ``bytes.count`` calls (all C
loops), weighted by coefficients fitted against the o200k BPE vocabulary (gpt-oss) on English prose,
Python code, JSON and 14 other languages. The chat template of each model family adds a fixed cost
per request, per message, per tool call, per tool and per ``response_format`` schema.

Calibration: every response's real ``prompt_tokens`` is compared with the raw estimate of the same
request. Per model, an exponentially weighted mean and variance of ``actual / raw`` (large prompts
weigh more) give a high quantile (``mean + z * sd``, ``quantile=0.95`` by default) that multiplies
later raw estimates, so the estimate stays on the safe side while its error shrinks as the process
runs. A server ``context_length_exceeded`` is a calibration point too (``observe_context_error``). Before any
observation a prior factor applies (``1.2`` for the heuristic, ``1.0`` with an exact counter).

An exact counter can be plugged in: a callable ``str -> int``, or the path of a ``tokenizer.json``
file (needs the optional ``tokenizers`` package, imported only then).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from cerebras_paygo.errors import ConfigurationError, ContextWindowExceededError
from cerebras_paygo.wire import ChatCompletionRequest, Message

__all__ = [
    "DEFAULT_PROFILES",
    "GENERIC_PROFILE",
    "CalibrationStats",
    "PromptBreakdown",
    "TemplateProfile",
    "TokenCounter",
    "TokenEstimator",
    "heuristic_tokens",
    "shared_estimator",
]

TokenCounter = Callable[[str], int]


# --- the text heuristic ----------------------------------------------------------------------


def _class_table() -> bytes:
    """Byte -> character class: ASCII by kind, UTF-8 lead bytes by script block, continuations '~'."""
    table = bytearray(256)
    for byte in range(256):
        char = chr(byte)
        if byte < 0x80:
            cls = "A" if char.isupper() else "a" if char.isalpha() else "0" if char.isdigit() else "."
            cls = " " if char.isspace() else cls
        elif byte < 0xC0:
            cls = "~"  # continuation byte
        elif byte < 0xCA or byte == 0xE2:
            cls = "l"  # U+0080-027F: Latin letters with diacritics, symbols; U+2000-2FFF: punctuation
        elif byte < 0xE0:
            cls = "b"  # Greek, Cyrillic, Armenian, Hebrew, Arabic, ...
        elif 0xE3 <= byte <= 0xED:
            cls = "c"  # U+3000-DFFF: kana, CJK ideographs, Hangul
        elif byte < 0xF0:
            cls = "x"  # other 3-byte characters: Indic scripts, Thai, ..., U+E000-FFFF
        else:
            cls = "e"  # 4-byte characters: emoji, rare CJK
        table[byte] = ord(cls)
    return bytes(table)


_CLASSES = _class_table()
_LETTER_START = (b"a", b"A")


def heuristic_tokens(text: str) -> float:
    """Best-fit (unbiased, not conservative) token count of ``text`` for o200k-like BPE vocabularies.

    Coefficients were fitted against o200k (gpt-oss) on English prose, Python code, JSON and 14
    other languages; ``TokenEstimator`` adds the safety margin and the per-model calibration.
    About 1.5 µs for a short message, then ~1 ns per character.
    """
    if not text:
        return 0.0
    classes = text.encode("utf-8", "surrogatepass").translate(_CLASSES)
    count = classes.count
    digits = count(b"0")
    symbols = count(b".")
    spaces = count(b" ")
    estimate = (
        0.66 * (count(b" a") + 1.3 * count(b" A") + (classes[:1] in _LETTER_START))  # words
        + 0.73 * (count(b".a") + count(b".A"))  # words glued to a symbol
        + 1.1 * (digits - 2 * count(b"000"))  # digits go in groups of up to 3
        + 0.56 * symbols
        + 0.56 * text.count("\n")
        + 0.24 * count(b"  ")  # indentation
    )
    if len(classes) == len(text):  # ASCII: the rest are letters
        estimate += 0.08 * (len(classes) - digits - symbols - spaces)
    else:
        estimate += (
            0.08 * (count(b"a") + count(b"A"))
            + 0.22 * count(b"b")
            + 0.76 * count(b" b")
            + 1.23 * count(b"l")
            + 0.39 * count(b"x")
            + 0.78 * count(b"c")
            + 1.5 * count(b"e")
        )
    return estimate if estimate > 1.0 else 1.0


# --- chat template overhead ------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateProfile:
    """Tokens a model family's chat template adds around the text (before calibration).

    Attributes:
        request: once per request (BOS, the template's default system text, the generation prompt).
        message: per message (role header and end marker).
        name: per message that has a ``name`` (plus the name's text).
        tool_call: per tool call of an assistant message (plus the name and arguments text).
        tool_result: per ``tool`` message, on top of ``message``.
        tools: once when ``tools`` are given (the tool-use instructions; plus the tools' JSON).
        tool: per tool definition.
        response_format: when a ``json_schema``/``json_object`` response format is given (plus its JSON).
    """

    request: int = 64
    message: int = 8
    name: int = 4
    tool_call: int = 12
    tool_result: int = 8
    tools: int = 128
    tool: int = 12
    response_format: int = 32


#: Chat template profiles by model id prefix; the longest matching prefix wins.
DEFAULT_PROFILES: Mapping[str, TemplateProfile] = {
    # harmony: default system message (~50 tokens), <|start|>role<|channel|>..<|message|>..<|end|>
    "gpt-oss": TemplateProfile(
        request=56, message=5, name=2, tool_call=8, tool_result=6, tools=32, tool=8, response_format=16
    ),
    # GLM: [gMASK]<sop>, <|role|>, long tool-use instructions in the system prompt
    "zai-glm": TemplateProfile(
        request=8, message=3, name=2, tool_call=12, tool_result=6, tools=128, tool=4, response_format=32
    ),
    "glm": TemplateProfile(
        request=8, message=3, name=2, tool_call=12, tool_result=6, tools=128, tool=4, response_format=32
    ),
    # llama 3: <|begin_of_text|>, <|start_header_id|>role<|end_header_id|>\n\n ... <|eot_id|>
    "llama": TemplateProfile(
        request=32, message=5, name=3, tool_call=8, tool_result=4, tools=96, tool=4, response_format=32
    ),
    # ChatML: <|im_start|>role\n ... <|im_end|>\n
    "qwen": TemplateProfile(
        request=4, message=5, name=3, tool_call=10, tool_result=6, tools=112, tool=4, response_format=32
    ),
}
GENERIC_PROFILE = TemplateProfile()


@dataclass(frozen=True)
class PromptBreakdown:
    """Raw (uncalibrated) token counts of one request: fixed part plus one entry per message."""

    model: str
    fixed: float
    messages: tuple[float, ...]

    @property
    def total(self) -> float:
        return self.fixed + sum(self.messages)


@dataclass(frozen=True)
class CalibrationStats:
    """What the estimator has learned of one model."""

    model: str
    observations: int
    factor: float  # multiplies raw estimates now
    mean_ratio: float  # exponentially weighted mean of actual / raw
    sd_ratio: float  # and its standard deviation (prior blended in while observations are few)


# --- calibration -----------------------------------------------------------------------------

_TEXT_CACHE_SIZE = 8192  # memoized text counts (keys are hashes, so no text is kept alive)
_RECENT = 512  # raw estimates remembered per model, to invert the factor in observe()
_RATIO_MIN, _RATIO_MAX = 0.2, 5.0
_SIZE_WEIGHT = 256.0  # a prompt of this many raw tokens weighs half as much as a very large one
_FACTOR_MIN, _FACTOR_MAX = 0.25, 5.0
_PRIOR_WEIGHT = 4.0  # pseudo-observations of the prior standard deviation


class _Calibration:
    __slots__ = ("mean", "n", "recent", "var", "weight")

    def __init__(self) -> None:
        self.n = 0
        self.weight = 0.0  # exponentially decayed sum of observation weights
        self.mean = 1.0
        self.var = 0.0
        self.recent: dict[int, float] = {}


class TokenEstimator:
    """Conservative prompt-token estimates for chat requests, calibrated from real usage.

    Thread-safe: counting is pure, calibration state sits behind one lock. Share one per process
    (``shared_estimator()``) so every client learns from every response.

    Args:
        counter: an exact counter for text: a callable ``str -> int``, or a path to a
            ``tokenizer.json`` the user already has (needs ``pip install tokenizers``).
            ``None`` uses the built-in heuristic.
        quantile: the quantile of ``actual / estimate`` the calibrated factor aims at.
        halflife: observations after which an old observation weighs half as much.
        prior_factor: the factor before any observation (1.2 with the heuristic, 1.0 with a counter).
        prior_sd: the assumed spread of ``actual / estimate`` while observations are few.
        profiles: chat template profiles by model id prefix, merged over ``DEFAULT_PROFILES``.

    Raises:
        ConfigurationError: a bad argument, a missing tokenizer file, or ``tokenizers`` not installed.
    """

    def __init__(
        self,
        counter: TokenCounter | str | os.PathLike[str] | None = None,
        *,
        quantile: float = 0.95,
        halflife: float = 20.0,
        prior_factor: float | None = None,
        prior_sd: float | None = None,
        profiles: Mapping[str, TemplateProfile] | None = None,
    ) -> None:
        if not 0.5 <= quantile < 1.0:
            raise ConfigurationError(f"quantile must be in [0.5, 1), not {quantile!r}")
        if halflife <= 0:
            raise ConfigurationError(f"halflife must be positive, not {halflife!r}")
        if counter is None:
            self._count: TokenCounter | None = None
        elif isinstance(counter, (str, os.PathLike)):
            self._count = _tokenizer_file_counter(counter)
        elif callable(counter):
            self._count = counter
        else:
            raise ConfigurationError(f"counter must be a callable str -> int or a tokenizer.json path, not {counter!r}")
        exact = self._count is not None
        self.prior_factor = float(prior_factor if prior_factor is not None else (1.0 if exact else 1.2))
        self.prior_sd = float(prior_sd if prior_sd is not None else (0.03 if exact else 0.1))
        if self.prior_factor <= 0 or self.prior_sd < 0:
            raise ConfigurationError("prior_factor must be positive and prior_sd non-negative")
        self._z = NormalDist().inv_cdf(quantile)
        self._alpha = 1.0 - 0.5 ** (1.0 / halflife)
        self._n_cap = 2.0 / self._alpha - 1.0  # effective sample size of the exponential weights
        self._profiles = dict(DEFAULT_PROFILES)
        if profiles:
            self._profiles.update(profiles)
        self._prefixes = sorted(self._profiles, key=len, reverse=True)
        self._profile_cache: dict[str, TemplateProfile] = {}
        self._text_cache: dict[tuple[int, int], float] = {}  # plain dict ops: atomic under the GIL
        self._lock = threading.Lock()
        self._state: dict[str, _Calibration] = {}

    # -- counting (pure) --

    @property
    def exact(self) -> bool:
        """Whether text is counted by a user-supplied exact counter."""
        return self._count is not None

    def count_text(self, text: str) -> int:
        """Tokens of ``text`` alone: the exact counter's answer, or the heuristic rounded up."""
        return math.ceil(self._text_tokens(text) - 1e-9) if text else 0

    def profile(self, model: str) -> TemplateProfile:
        """The chat template profile used for ``model`` (longest id prefix match)."""
        profile = self._profile_cache.get(model)
        if profile is None:
            profile = next((self._profiles[p] for p in self._prefixes if model.startswith(p)), GENERIC_PROFILE)
            if len(self._profile_cache) < 1024:
                self._profile_cache[model] = profile
        return profile

    def breakdown(self, request: ChatCompletionRequest) -> PromptBreakdown:
        """Raw (uncalibrated) counts: the fixed part (template, tools, response format) and each message."""
        text = self._text_tokens
        profile = self.profile(request.model)
        fixed = float(profile.request)
        if request.tools:
            fixed += profile.tools + profile.tool * len(request.tools) + text(_json(request.tools))
        response_format = request.response_format
        if response_format and response_format.get("type") in ("json_schema", "json_object"):
            fixed += profile.response_format + text(_json(response_format))
        messages = request.messages
        keep_reasoning_from = 0 if request.clear_thinking is False else _last_user_index(messages) + 1
        per_message = float(profile.message)
        costs: list[float] = []
        for index, message in enumerate(messages):
            content = message.content
            cost = per_message + text(content) if isinstance(content, str) else per_message
            if (content and not isinstance(content, str)) or message.name or message.tool_calls or message.reasoning:
                cost += self._message_extras(message, profile, index >= keep_reasoning_from)
            if message.role == "tool":
                cost += profile.tool_result
            costs.append(cost)
        return PromptBreakdown(model=request.model, fixed=fixed, messages=tuple(costs))

    def raw_estimate(self, request: ChatCompletionRequest) -> float:
        """The uncalibrated prompt estimate of ``request``."""
        return self.breakdown(request).total

    def estimate_request(self, request: ChatCompletionRequest) -> int:
        """Calibrated, conservative prompt tokens of ``request``: messages, template, tools, response_format."""
        return self.calibrated(request.model, self.raw_estimate(request))

    def estimate_text(self, text: str, model: str = "") -> int:
        """Calibrated tokens of a bare text (no chat template) for ``model``."""
        return self.calibrated(model, float(self.count_text(text)), remember=False)

    def _text_tokens(self, text: str) -> float:
        """Raw tokens of a text, memoized by (hash, length): chat histories are sent again every turn."""
        if not text:
            return 0.0
        key = (hash(text), len(text))
        cached = self._text_cache.get(key)
        if cached is not None:
            return cached
        value = float(self._count(text)) if self._count is not None else heuristic_tokens(text)
        if len(self._text_cache) >= _TEXT_CACHE_SIZE:
            self._text_cache.clear()
        self._text_cache[key] = value
        return value

    def _message_extras(self, message: Message, profile: TemplateProfile, keep_reasoning: bool) -> float:
        text = self._text_tokens
        cost = 0.0
        content = message.content
        if content and not isinstance(content, str):
            for part in content:
                if part.get("type") == "text" or "text" in part:
                    cost += text(str(part.get("text", "")))
                else:
                    cost += text(_json(part))
        if message.name:
            cost += profile.name + text(message.name)
        if message.tool_calls:
            for call in message.tool_calls:
                cost += profile.tool_call + text(call.function.name or "") + text(call.function.arguments or "")
        if message.reasoning and keep_reasoning:
            cost += text(message.reasoning)
        return cost

    # -- calibration --

    def factor(self, model: str) -> float:
        """The factor that multiplies raw estimates of ``model`` now."""
        with self._lock:
            return self._factor_locked(self._state.get(model))

    def _factor_locked(self, state: _Calibration | None) -> float:
        if state is None or state.n == 0:
            return self.prior_factor
        factor = state.mean + self._z * self._sd_locked(state)
        return min(max(factor, _FACTOR_MIN), _FACTOR_MAX)

    def _sd_locked(self, state: _Calibration) -> float:
        n = min(float(state.n), self._n_cap)
        variance = (n * state.var + _PRIOR_WEIGHT * self.prior_sd**2) / (n + _PRIOR_WEIGHT)
        return math.sqrt(variance)

    def calibrated(self, model: str, raw: float, *, factor: float | None = None, remember: bool = True) -> int:
        """``raw`` times the model's current factor (or ``factor``), rounded up.

        The pair is remembered so that ``observe`` can tell the raw estimate behind an estimate.
        """
        if raw <= 0:
            return 0
        with self._lock:
            state = self._state.get(model)
            estimate = math.ceil(raw * (self._factor_locked(state) if factor is None else factor) - 1e-9)
            if remember:
                if state is None:
                    state = self._state[model] = _Calibration()
                recent = state.recent
                if len(recent) >= _RECENT:
                    del recent[next(iter(recent))]
                recent[estimate] = raw
        return estimate

    def observe(self, model: str, estimated: int, actual_prompt_tokens: int) -> None:
        """Learn from a response: ``estimated`` is what ``estimate_request`` said, the other the real count.

        Observations with a non-positive count are ignored.
        """
        if estimated <= 0 or actual_prompt_tokens <= 0:
            return
        with self._lock:
            state = self._state.get(model)
            if state is None:
                state = self._state[model] = _Calibration()
            raw = state.recent.get(estimated)
            if raw is None:
                raw = estimated / self._factor_locked(state)
            ratio = min(max(actual_prompt_tokens / raw, _RATIO_MIN), _RATIO_MAX)
            # Large prompts weigh more: they are where the window and the TPM reservation bite, and
            # their ratio reflects the tokenizer rather than a template overhead of a few tokens.
            weight = raw / (raw + _SIZE_WEIGHT)
            state.n += 1
            state.weight = state.weight * (1.0 - self._alpha) + weight
            step = weight / state.weight
            diff = ratio - state.mean
            state.mean += step * diff
            state.var = (1.0 - step) * (state.var + step * diff * diff)

    def observe_context_error(
        self,
        model: str,
        err: ContextWindowExceededError,
        estimated_prompt: int,
        max_completion_tokens: int,
    ) -> int | None:
        """Learn from a server ``context_length_exceeded`` ("Current length is X while limit is Y").

        X is the prompt plus the ``max_completion_tokens`` reservation, so the real prompt is
        ``X - max_completion_tokens``; it is fed to ``observe``. Returns that prompt length, or
        ``None`` when the error carries no length or was raised locally (our own estimate).
        """
        if err.local or err.current_length is None:
            return None
        actual = err.current_length - max(0, max_completion_tokens)
        if actual <= 0:
            return None
        self.observe(model, estimated_prompt, actual)
        return actual

    def calibration(self, model: str) -> CalibrationStats:
        """What has been learned of ``model`` so far."""
        with self._lock:
            state = self._state.get(model)
            if state is None or state.n == 0:
                return CalibrationStats(model, 0, self.prior_factor, 1.0, self.prior_sd)
            return CalibrationStats(model, state.n, self._factor_locked(state), state.mean, self._sd_locked(state))

    def reset(self, model: str | None = None) -> None:
        """Forget the calibration of ``model`` (or of every model)."""
        with self._lock:
            if model is None:
                self._state.clear()
            else:
                self._state.pop(model, None)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _last_user_index(messages: list[Message]) -> int:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return index
    return -1


def _tokenizer_file_counter(path: str | os.PathLike[str]) -> TokenCounter:
    location = os.fspath(path)
    if not os.path.isfile(location):
        raise ConfigurationError(f"tokenizer file {location!r} does not exist")
    try:
        tokenizers = importlib.import_module("tokenizers")
    except ImportError as exc:
        raise ConfigurationError(
            "counting tokens with a tokenizer.json file needs the optional 'tokenizers' package: "
            "pip install tokenizers (or pass counter=<callable str -> int>, or no counter for the built-in estimate)"
        ) from exc
    try:
        tokenizer = tokenizers.Tokenizer.from_file(location)
    except Exception as exc:  # the Rust binding raises its own exception types
        raise ConfigurationError(f"cannot load tokenizer file {location!r}: {exc}") from exc

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count


_shared: TokenEstimator | None = None
_shared_lock = threading.Lock()


def shared_estimator() -> TokenEstimator:
    """The process-wide estimator every client shares (and calibrates)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = TokenEstimator()
    return _shared
