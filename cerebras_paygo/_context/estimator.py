"""Token estimation: fast, conservative, and calibrated per model from real ``usage.prompt_tokens``.

No tokenizer is downloaded and nothing heavy is imported. A text is counted by one UTF-8 encode,
one byte-table ``translate`` into character classes and a handful of ``bytes.count`` calls (all C
loops). The same counts give two numbers: a best fit of the o200k BPE vocabulary (gpt-oss), fitted
on English prose, Python code, JSON and 14 other languages, and a *ceiling* that also covers
tokenizers splitting words more finely (a token per 4 letters, each symbol apart: the local
emulator's tokenizer is one). The chat template of each model family adds a fixed cost per
request, and one per message, per tool call, per tool and per ``response_format`` schema.

A request's raw count has six parts (``RawParts``): template tokens per request, template tokens
per message, then for ASCII and for other scripts apart, the text's best-fit count and the
ceiling's extra tokens. Before any observation the estimate is their sum (times ``prior_factor``,
1.0): at or above the BPE count and the emulator's count for prose, code, JSON and other
languages (actual / estimate is about 1.0 at the 99th percentile of single texts, and about 0.9
on long prompts, where texts average out).

Calibration: every response's real ``prompt_tokens`` is compared with the parts of the same
request. Per model, a weighted ridge regression with exponential forgetting fits
``actual ~ sum(coefficient[i] * part[i])`` on relative errors, each coefficient pulled towards 1
while the data say little about it. So a template the profile over-counts is learned as such (a
small request coefficient) and never shrinks the text coefficients, and calibrating on one script
leaves the other's at its prior. On top of the fitted prediction, a margin (``mean + z * sd`` of
``actual / predicted``, ``quantile=0.95`` by default, never below 1) is tracked apart for small
and for large prompts and blended by the prompt's size. Whatever was learned, an estimate is never
below ``min_text_factor`` (1.0) times the text's best-fit count: a large prompt cannot be estimated
at a fraction of its text because small prompts were over-estimated. A server
``context_length_exceeded`` is a calibration point too (``observe_context_error``).

An exact counter can be plugged in: a callable ``str -> int``, or the path of a ``tokenizer.json``
file (needs the optional ``tokenizers`` package, imported only then). Its count is the (ASCII) text
part, with no extra part.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from cerebras_paygo._wire import ChatCompletionRequest, Message
from cerebras_paygo.errors import ConfigurationError, ContextWindowExceededError

__all__ = [
    "DEFAULT_PROFILES",
    "GENERIC_PROFILE",
    "CalibrationStats",
    "PromptBreakdown",
    "PromptScale",
    "RawParts",
    "TemplateProfile",
    "TokenCounter",
    "TokenEstimator",
    "add_parts",
    "heuristic_tokens",
    "shared_estimator",
    "subtract_parts",
]

TokenCounter = Callable[[str], int]

#: Raw (uncalibrated) token counts of a request or of a part of one: (template per request,
#: template per message, ASCII text best fit, ASCII text extra, other-script text best fit,
#: other-script text extra). The extras are what the heuristic's ceiling adds to the best fit; an
#: exact counter's count is the ASCII text part. The raw total is their sum.
RawParts = tuple[float, float, float, float, float, float]
_PARTS = 6
_ZERO: RawParts = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
TextParts = tuple[float, float, float, float]  # the four text parts of one text
_NO_TEXT: TextParts = (0.0, 0.0, 0.0, 0.0)


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


def _heuristic(text: str) -> TextParts:
    """The text parts of a non-empty ``text``: (ASCII fit, ASCII extra, other fit, other extra).

    The fit is the o200k best fit; fit plus extra the ceiling. Digits, symbols and whitespace
    count as ASCII; letters of other scripts (and Latin letters with diacritics) as other.
    """
    classes = text.encode("utf-8", "surrogatepass").translate(_CLASSES)
    count = classes.count
    digits = count(b"0")
    symbols = count(b".")
    lower, upper, glued = count(b" a"), count(b" A"), count(b".a") + count(b".A")
    first = classes[:1] in _LETTER_START
    digit_groups = digits - 2 * count(b"000")  # digits go in groups of up to 3
    newlines = text.count("\n")
    indents = count(b"  ")
    fit = (
        0.66 * (lower + 1.3 * upper + first)  # words
        + 0.73 * glued  # words glued to a symbol
        + 1.1 * digit_groups
        + 0.56 * symbols
        + 0.56 * newlines
        + 0.24 * indents
    )
    # The ceiling: about a token per short word and one more per 4 letters of a long one, a token
    # per symbol and per newline. Fitted as a 97% expectile of the larger of the o200k and the
    # emulator's counts on the texts above; actual / ceiling is at most ~1.0 at p99.
    ceiling = (
        0.6 * (lower + upper + first + glued)
        + 0.35 * count(b"aaaa")
        + 1.1 * digit_groups
        + symbols
        + newlines
        + 0.37 * indents
    )
    if len(classes) == len(text):  # ASCII: the rest are letters
        letters = len(classes) - digits - symbols - count(b" ")
        fit += 0.08 * letters
        ceiling += 0.19 * letters
        other_fit = other_ceiling = 0.0
    else:
        letters = count(b"a") + count(b"A")
        fit += 0.08 * letters
        ceiling += 0.19 * letters
        script, latin, indic, cjk, astral = count(b"b"), count(b"l"), count(b"x"), count(b"c"), count(b"e")
        other_fit = 0.22 * script + 0.76 * count(b" b") + 1.23 * latin + 0.39 * indic + 0.78 * cjk + 1.5 * astral
        other_ceiling = 0.48 * script + 1.04 * latin + 0.93 * indic + 1.1 * cjk + 1.5 * astral
    if fit + other_fit < 1.0:  # at least one token for any text
        fit = 1.0 - other_fit
    return (
        fit,
        ceiling - fit if ceiling > fit else 0.0,
        other_fit,
        other_ceiling - other_fit if other_ceiling > other_fit else 0.0,
    )


def heuristic_tokens(text: str, *, ceiling: bool = False) -> float:
    """Best-fit (unbiased, not conservative) token count of ``text`` for o200k-like BPE vocabularies.

    Coefficients were fitted against o200k (gpt-oss) on English prose, Python code, JSON and 14
    other languages; ``TokenEstimator`` adds the template, the calibration and the safety margins.
    With ``ceiling=True``: a conservative count, also at or above tokenizers that split words
    more finely (such as the emulator's); about 1.7x the best fit on English and code.
    About 1.5 µs for a short message, then ~1 ns per character.
    """
    if not text:
        return 0.0
    fit, extra, other_fit, other_extra = _heuristic(text)
    return fit + other_fit + extra + other_extra if ceiling else fit + other_fit


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
    """Raw (uncalibrated) counts of one request: the fixed part plus one entry per message.

    ``fixed`` and ``messages`` are raw totals; ``fixed_parts`` and ``message_parts`` split the
    same counts into ``RawParts``, which ``PromptScale.tokens`` turns into an estimate.
    """

    model: str
    fixed: float
    messages: tuple[float, ...]
    fixed_parts: RawParts = _ZERO
    message_parts: tuple[RawParts, ...] = ()

    @property
    def total(self) -> float:
        return self.fixed + sum(self.messages)

    @property
    def parts(self) -> RawParts:
        """The request's ``RawParts`` (the fixed part and every message)."""
        return add_parts(self.fixed_parts, *self.message_parts)


def add_parts(first: RawParts, *more: RawParts) -> RawParts:
    """The sum of ``RawParts``."""
    a, b, c, d, e, f = first
    for part in more:
        a += part[0]
        b += part[1]
        c += part[2]
        d += part[3]
        e += part[4]
        f += part[5]
    return (a, b, c, d, e, f)


def subtract_parts(first: RawParts, *more: RawParts) -> RawParts:
    """``first`` minus the other ``RawParts`` (what is left after dropping messages)."""
    a, b, c, d, e, f = first
    for part in more:
        a -= part[0]
        b -= part[1]
        c -= part[2]
        d -= part[3]
        e -= part[4]
        f -= part[5]
    return (a, b, c, d, e, f)


@dataclass(frozen=True)
class CalibrationStats:
    """What the estimator has learned of one model.

    Attributes:
        factor: what a large prompt's raw count is multiplied by now, for the model's usual text
            mix (``TokenEstimator.factor``); estimates themselves are made part by part.
        mean_ratio: the exponentially weighted mean of ``actual / raw`` (large prompts weigh more).
        sd_ratio: the spread of ``actual / predicted`` on large prompts (prior blended in while
            observations are few).
        coefficients: the regression's coefficient of each of the ``RawParts``.
        small_margin, large_margin: the margins of ``PromptScale`` (high quantiles, at least 1).
    """

    model: str
    observations: int
    factor: float
    mean_ratio: float
    sd_ratio: float
    coefficients: RawParts = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    small_margin: float = 1.0
    large_margin: float = 1.0


# --- calibration -----------------------------------------------------------------------------

_TEXT_CACHE_SIZE = 8192  # memoized text counts (keys are hashes, so no text is kept alive)
_RECENT = 512  # raw parts remembered per model, to find the parts behind an estimate in observe()
_RATIO_MIN, _RATIO_MAX = 0.2, 5.0
_SIZE_WEIGHT = 256.0  # a prompt of this many raw tokens is half "small", half "large"
_FACTOR_MIN, _FACTOR_MAX = 0.25, 5.0  # bounds of factor(); the upper one bounds a margin too
_COEF_MAX = 5.0  # upper bound of a regression coefficient (the lower bound is 0)
_PRIOR_WEIGHT = 2.0  # pseudo-observations of the prior spread (prior_sd)
_MEAN_PRIOR_WEIGHT = 0.5  # pseudo-observations of a mean ratio of 1 (actual = predicted)
#: Ridge precision pulling each coefficient towards 1, in observations made of that part alone
#: (the data weigh up to ~29 observations at the default halflife). A part that is a sliver of
#: every prompt seen (the text of tiny prompts) stays near 1; a part the data pin down follows
#: them. The best-fit text counts hold a little more than the template's and the ceiling's extras,
#: which are where tokenizers differ most.
_RIDGE: RawParts = (0.1, 0.5, 0.3, 0.02, 0.3, 0.02)
_HEURISTIC_MIX: TextParts = (0.6, 0.4, 0.0, 0.0)  # text mix assumed before observations (English)
_EXACT_MIX: TextParts = (1.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class PromptScale:
    """How ``RawParts`` become a calibrated, conservative estimate for one model (an immutable snapshot).

    ``predicted`` is the sum of each part times its coefficient; the estimate is ``predicted``
    times a margin (``small_margin`` for a small prompt, ``large_margin`` for a large one, blended
    by the prompt's raw size), never below ``floor`` times the text's best-fit count, rounded up.
    """

    coefficients: RawParts = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    small_margin: float = 1.0
    large_margin: float = 1.0
    floor: float = 1.0

    def tokens(self, parts: RawParts) -> int:
        """The calibrated estimate of ``parts`` (0 for nothing)."""
        request, message, text, extra, other, other_extra = parts
        raw = request + message + text + extra + other + other_extra
        if raw <= 0:
            return 0
        c = self.coefficients
        predicted = c[0] * request + c[1] * message + c[2] * text + c[3] * extra + c[4] * other + c[5] * other_extra
        large = raw / (raw + _SIZE_WEIGHT)
        estimate = predicted * (large * self.large_margin + (1.0 - large) * self.small_margin)
        floor = self.floor * (text + other)
        return math.ceil((estimate if estimate > floor else floor) - 1e-9)


class _Tracker:
    """An exponentially weighted, weighted mean and variance."""

    __slots__ = ("mean", "var", "weight")

    def __init__(self) -> None:
        self.weight = 0.0  # exponentially decayed sum of observation weights
        self.mean = 1.0
        self.var = 0.0

    def add(self, value: float, weight: float, decay: float) -> None:
        self.weight = self.weight * decay + weight
        if self.weight > 0.0:
            step = weight / self.weight
            diff = value - self.mean
            self.mean += step * diff
            self.var = (1.0 - step) * (self.var + step * diff * diff)


class _Calibration:
    __slots__ = ("gram", "large", "last", "mix", "mix_weight", "moment", "n", "ratio", "recent", "scale", "small")

    def __init__(self, scale: PromptScale, mix: TextParts) -> None:
        self.n = 0
        self.gram = [[0.0] * _PARTS for _ in range(_PARTS)]  # decayed sum of w * parts * parts^T
        self.moment = [0.0] * _PARTS  # decayed sum of w * parts * actual
        self.small = _Tracker()  # actual / predicted of small prompts
        self.large = _Tracker()  # and of large ones
        self.ratio = _Tracker()  # actual / raw, large prompts weigh more (reported)
        self.mix = list(mix)  # the usual text mix (shares of the four text parts), for factor()
        self.mix_weight = 0.0
        self.recent: dict[int, RawParts] = {}
        self.last: RawParts | None = None
        self.scale = scale


class TokenEstimator:
    """Conservative prompt-token estimates for chat requests, calibrated from real usage.

    Thread-safe: counting is pure, calibration state sits behind one lock. Share one per process
    (``shared_estimator()``) so every client learns from every response.

    Args:
        counter: an exact counter for text: a callable ``str -> int``, or a path to a
            ``tokenizer.json`` the user already has (needs ``pip install tokenizers``).
            ``None`` uses the built-in heuristic (its ceiling until calibrated).
        quantile: the quantile of ``actual / predicted`` the calibrated margins aim at.
        halflife: observations after which an old observation weighs half as much.
        prior_factor: the margin before any observation (1.0: the heuristic's ceiling and the
            template profiles are on the high side already; an exact counter is exact).
        prior_sd: the assumed spread of ``actual / predicted`` while observations are few.
        profiles: chat template profiles by model id prefix, merged over ``DEFAULT_PROFILES``.
        min_text_factor: an estimate is never below this times the text's best-fit (or exact)
            count, whatever calibration learned.

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
        min_text_factor: float = 1.0,
    ) -> None:
        if not 0.5 <= quantile < 1.0:
            raise ConfigurationError(f"quantile must be in [0.5, 1), not {quantile!r}")
        if halflife <= 0:
            raise ConfigurationError(f"halflife must be positive, not {halflife!r}")
        if not 0.0 <= min_text_factor <= _COEF_MAX:
            raise ConfigurationError(f"min_text_factor must be in [0, {_COEF_MAX:g}], not {min_text_factor!r}")
        if counter is None:
            self._count: TokenCounter | None = None
        elif isinstance(counter, (str, os.PathLike)):
            self._count = _tokenizer_file_counter(counter)
        elif callable(counter):
            self._count = counter
        else:
            raise ConfigurationError(f"counter must be a callable str -> int or a tokenizer.json path, not {counter!r}")
        exact = self._count is not None
        self.prior_factor = float(prior_factor if prior_factor is not None else 1.0)
        self.prior_sd = float(prior_sd if prior_sd is not None else (0.03 if exact else 0.08))
        if not 0 < self.prior_factor <= _FACTOR_MAX or self.prior_sd < 0:
            raise ConfigurationError(f"prior_factor must be in (0, {_FACTOR_MAX:g}] and prior_sd non-negative")
        self.min_text_factor = float(min_text_factor)
        self._z = NormalDist().inv_cdf(quantile)
        self._alpha = 1.0 - 0.5 ** (1.0 / halflife)
        self._margin_min = min(1.0, self.prior_factor)
        self._mix = _EXACT_MIX if exact else _HEURISTIC_MIX
        self._prior_scale = PromptScale(
            small_margin=self.prior_factor, large_margin=self.prior_factor, floor=self.min_text_factor
        )
        self._profiles = dict(DEFAULT_PROFILES)
        if profiles:
            self._profiles.update(profiles)
        self._prefixes = sorted(self._profiles, key=len, reverse=True)
        self._profile_cache: dict[str, TemplateProfile] = {}
        self._text_cache: dict[tuple[int, int], TextParts] = {}  # plain dict ops: atomic under the GIL
        self._lock = threading.Lock()
        self._state: dict[str, _Calibration] = {}

    # -- counting (pure) --

    @property
    def exact(self) -> bool:
        """Whether text is counted by a user-supplied exact counter."""
        return self._count is not None

    def count_text(self, text: str) -> int:
        """Tokens of ``text`` alone: the exact counter's answer, or the heuristic's best fit rounded up."""
        if not text:
            return 0
        parts = self._text_parts(text)
        return math.ceil(parts[0] + parts[2] - 1e-9)

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
        profile = self.profile(request.model)
        fixed = self._fixed_parts(request, profile)
        parts: list[RawParts] = []
        self._message_parts(request, profile, parts)
        return PromptBreakdown(
            model=request.model,
            fixed=sum(fixed),
            messages=tuple(map(sum, parts)),
            fixed_parts=fixed,
            message_parts=tuple(parts),
        )

    def raw_estimate(self, request: ChatCompletionRequest) -> float:
        """The uncalibrated prompt estimate of ``request`` (template plus the text's ceiling)."""
        return sum(self.request_parts(request))

    def request_parts(self, request: ChatCompletionRequest) -> RawParts:
        """The ``RawParts`` of the whole request (``breakdown(request).parts``, without the per-message list)."""
        profile = self.profile(request.model)
        fixed = self._fixed_parts(request, profile)
        return add_parts(fixed, self._message_parts(request, profile, None))

    def estimate_request(self, request: ChatCompletionRequest) -> int:
        """Calibrated, conservative prompt tokens of ``request``: messages, template, tools, response_format."""
        return self.calibrated(request.model, self.request_parts(request))

    def _fixed_parts(self, request: ChatCompletionRequest, profile: TemplateProfile) -> RawParts:
        template = float(profile.request)
        fixed: TextParts = _NO_TEXT
        if request.tools:
            template += profile.tools + profile.tool * len(request.tools)
            fixed = self._text_parts(_json(request.tools))
        response_format = request.response_format
        if response_format and response_format.get("type") in ("json_schema", "json_object"):
            template += profile.response_format
            more = self._text_parts(_json(response_format))
            fixed = (fixed[0] + more[0], fixed[1] + more[1], fixed[2] + more[2], fixed[3] + more[3])
        return (template, 0.0, fixed[0], fixed[1], fixed[2], fixed[3])

    def _message_parts(
        self, request: ChatCompletionRequest, profile: TemplateProfile, out: list[RawParts] | None
    ) -> RawParts:
        """The messages' ``RawParts``, summed; each message's appended to ``out`` too when given."""
        text_parts = self._text_parts
        messages = request.messages
        keep_reasoning_from = 0 if request.clear_thinking is False else _last_user_index(messages) + 1
        per_message = float(profile.message)
        overheads = texts = extras = others = other_extras = 0.0
        for index, message in enumerate(messages):
            content = message.content
            text, extra, other, other_extra = text_parts(content) if isinstance(content, str) else _NO_TEXT
            overhead = per_message
            if (content and not isinstance(content, str)) or message.name or message.tool_calls or message.reasoning:
                more_overhead, pieces = self._message_extras(message, profile, index >= keep_reasoning_from)
                overhead += more_overhead
                for piece in pieces:
                    more = text_parts(piece)
                    text += more[0]
                    extra += more[1]
                    other += more[2]
                    other_extra += more[3]
            if message.role == "tool":
                overhead += profile.tool_result
            if out is not None:
                out.append((0.0, overhead, text, extra, other, other_extra))
            overheads += overhead
            texts += text
            extras += extra
            others += other
            other_extras += other_extra
        return (0.0, overheads, texts, extras, others, other_extras)

    def estimate_text(self, text: str, model: str = "") -> int:
        """Calibrated tokens of a bare text (no chat template) for ``model``."""
        if not text:
            return 0
        return self.calibrated(model, (0.0, 0.0, *self._text_parts(text)), remember=False)

    def _text_parts(self, text: str) -> TextParts:
        """The four raw text parts of a text, memoized by (hash, length): chat histories are sent again."""
        if not text:
            return _NO_TEXT
        key = (hash(text), len(text))
        cached = self._text_cache.get(key)
        if cached is not None:
            return cached
        value = (float(self._count(text)), 0.0, 0.0, 0.0) if self._count is not None else _heuristic(text)
        if len(self._text_cache) >= _TEXT_CACHE_SIZE:
            self._text_cache.clear()
        self._text_cache[key] = value
        return value

    @staticmethod
    def _message_extras(message: Message, profile: TemplateProfile, keep_reasoning: bool) -> tuple[float, list[str]]:
        """The template tokens and the texts of a message's parts, name, tool calls and reasoning."""
        overhead = 0.0
        pieces: list[str] = []
        content = message.content
        if content and not isinstance(content, str):
            for part in content:
                if part.get("type") == "text" or "text" in part:
                    pieces.append(str(part.get("text", "")))
                else:
                    pieces.append(_json(part))
        if message.name:
            overhead += profile.name
            pieces.append(message.name)
        if message.tool_calls:
            for call in message.tool_calls:
                overhead += profile.tool_call
                pieces.append(call.function.name or "")
                pieces.append(call.function.arguments or "")
        if message.reasoning and keep_reasoning:
            pieces.append(message.reasoning)
        return overhead, pieces

    # -- calibration --

    def scale(self, model: str) -> PromptScale:
        """The calibration of ``model`` now, an immutable snapshot: ``scale(model).tokens(parts)`` estimates."""
        with self._lock:
            state = self._state.get(model)
            return self._prior_scale if state is None else state.scale

    def factor(self, model: str) -> float:
        """What a large prompt's raw count (``raw_estimate``) of ``model`` is multiplied by now.

        Informational: estimates are made part by part (``scale(model)``: the template per
        request and per message and each text part have their own coefficient, and the text's
        best fit is a floor). This combines them for a large prompt of the text mix the model has
        seen, margin and floor included (``prior_factor`` before any observation).
        """
        with self._lock:
            state = self._state.get(model)
            if state is None:
                return self._factor_of(self._prior_scale, self._mix)
            return self._factor_of(state.scale, state.mix)

    def _factor_of(self, scale: PromptScale, mix: Sequence[float]) -> float:
        c = scale.coefficients
        per_raw = c[2] * mix[0] + c[3] * mix[1] + c[4] * mix[2] + c[5] * mix[3]
        factor = max(per_raw * scale.large_margin, scale.floor * (mix[0] + mix[2]))
        return min(max(factor, _FACTOR_MIN), _FACTOR_MAX)

    def calibrated(
        self,
        model: str,
        raw: float | RawParts,
        *,
        factor: float | None = None,
        scale: PromptScale | None = None,
        remember: bool = True,
    ) -> int:
        """The calibrated estimate of ``raw`` (``RawParts``, or a raw total) for ``model``, rounded up.

        ``RawParts`` go through ``scale`` (default: the model's current ``scale(model)``). A bare
        total is taken as text of the model's usual mix (a large one gets about ``factor(model)``).
        An explicit ``factor`` multiplies the raw total instead. The estimate is remembered with its
        parts so that ``observe`` can tell what was estimated.
        """
        with self._lock:
            state = self._state.get(model)
            if isinstance(raw, tuple):
                parts = raw
            else:
                if raw <= 0:
                    return 0
                mix = self._mix if state is None else state.mix
                parts = (0.0, 0.0, raw * mix[0], raw * mix[1], raw * mix[2], raw * mix[3])
            if factor is not None:
                estimate = max(math.ceil(sum(parts) * factor - 1e-9), 0)
            else:
                if scale is None:
                    scale = self._prior_scale if state is None else state.scale
                estimate = scale.tokens(parts)
            if remember and estimate > 0:
                if state is None:
                    state = self._state[model] = _Calibration(self._prior_scale, self._mix)
                recent = state.recent
                if len(recent) >= _RECENT:
                    del recent[next(iter(recent))]
                recent[estimate] = parts
                state.last = parts
        return estimate

    def observe(self, model: str, estimated: int, actual_prompt_tokens: int) -> None:
        """Learn from a response: ``estimated`` is what ``estimate_request`` said, the other the real count.

        Observations with a non-positive count are ignored.
        """
        if estimated <= 0 or actual_prompt_tokens <= 0:
            return
        actual = float(actual_prompt_tokens)
        with self._lock:
            state = self._state.get(model)
            if state is None:
                state = self._state[model] = _Calibration(self._prior_scale, self._mix)
            parts = state.recent.get(estimated)
            if parts is None:
                parts = self._guess_parts(state, estimated)
            raw = sum(parts)
            if raw <= 0:
                return
            decay = 1.0 - self._alpha
            # The regression, on relative errors (weight 1 / raw^2): small and large prompts both count.
            weight = 1.0 / (raw * raw)
            gram, moment = state.gram, state.moment
            for i in range(_PARTS):
                weighted = weight * parts[i]
                moment[i] = moment[i] * decay + weighted * actual
                row = gram[i]
                for j in range(_PARTS):
                    row[j] = row[j] * decay + weighted * parts[j]
            coefficients = _ridge(gram, moment)
            # The margins: the spread of actual / predicted, apart for small and for large prompts.
            predicted = sum(c * p for c, p in zip(coefficients, parts, strict=True))
            ratio = min(max(actual / predicted, _RATIO_MIN), _RATIO_MAX) if predicted > 0 else _RATIO_MAX
            large = raw / (raw + _SIZE_WEIGHT)
            state.large.add(ratio, large, decay)
            state.small.add(ratio, 1.0 - large, decay)
            state.ratio.add(min(max(actual / raw, _RATIO_MIN), _RATIO_MAX), large, decay)
            text = parts[2] + parts[3] + parts[4] + parts[5]
            if text > 0:
                state.mix_weight = state.mix_weight * decay + large
                step = large / state.mix_weight
                state.mix = [
                    share + step * (part / text - share) for share, part in zip(state.mix, parts[2:], strict=True)
                ]
            state.n += 1
            state.scale = PromptScale(
                coefficients=coefficients,
                small_margin=self._margin(state.small),
                large_margin=self._margin(state.large),
                floor=self.min_text_factor,
            )

    def _sd(self, tracker: _Tracker) -> float:
        """The tracker's standard deviation, the prior's blended in while its weight is small."""
        weight = tracker.weight
        return math.sqrt((weight * tracker.var + _PRIOR_WEIGHT * self.prior_sd**2) / (weight + _PRIOR_WEIGHT))

    def _margin(self, tracker: _Tracker) -> float:
        """A high quantile of ``actual / predicted`` (at least 1), the prior's blended in while data are few."""
        weight = tracker.weight
        if weight <= 0.0:
            return self.prior_factor
        mean = (weight * tracker.mean + _MEAN_PRIOR_WEIGHT) / (weight + _MEAN_PRIOR_WEIGHT)
        return min(max(mean + self._z * self._sd(tracker), self._margin_min), _FACTOR_MAX)

    @staticmethod
    def _guess_parts(state: _Calibration, estimated: int) -> RawParts:
        """Parts for an estimate we did not make: the last request's, scaled to it (or plain text)."""
        scale, last = state.scale, state.last
        if last is not None:
            made = scale.tokens(last)
            if made > 0:
                k = estimated / made
                return (last[0] * k, last[1] * k, last[2] * k, last[3] * k, last[4] * k, last[5] * k)
        per_text = max(scale.coefficients[2] * scale.large_margin, scale.floor, 1e-9)
        return (0.0, 0.0, estimated / per_text, 0.0, 0.0, 0.0)

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
                prior = self._prior_scale
                return CalibrationStats(
                    model,
                    0,
                    self._factor_of(prior, self._mix),
                    1.0,
                    self.prior_sd,
                    small_margin=prior.small_margin,
                    large_margin=prior.large_margin,
                )
            scale = state.scale
            return CalibrationStats(
                model,
                state.n,
                self._factor_of(scale, state.mix),
                state.ratio.mean,
                self._sd(state.large),
                coefficients=scale.coefficients,
                small_margin=scale.small_margin,
                large_margin=scale.large_margin,
            )

    def reset(self, model: str | None = None) -> None:
        """Forget the calibration of ``model`` (or of every model)."""
        with self._lock:
            if model is None:
                self._state.clear()
            else:
                self._state.pop(model, None)


def _ridge(gram: Sequence[Sequence[float]], moment: Sequence[float]) -> RawParts:
    """Coefficients in [0, _COEF_MAX] minimizing the weighted squared error plus the ridge towards 1.

    Solves ``(gram + R) c = moment + R 1``; coefficients that come out negative are fixed at 0 and
    the others solved again.
    """
    free = list(range(_PARTS))
    coefficients = [0.0] * _PARTS
    while free:
        matrix = [[gram[i][j] + (_RIDGE[i] if i == j else 0.0) for j in free] + [moment[i] + _RIDGE[i]] for i in free]
        solution = _solve(matrix)
        negative = {free[k] for k, value in enumerate(solution) if value < 0.0}
        if not negative:
            for k, i in enumerate(free):
                coefficients[i] = min(solution[k], _COEF_MAX)
            break
        free = [i for i in free if i not in negative]
    a, b, c, d, e, f = coefficients
    return (a, b, c, d, e, f)


def _solve(matrix: list[list[float]]) -> list[float]:
    """Solve an augmented ``n x (n + 1)`` symmetric positive definite system in place (no pivoting needed)."""
    size = len(matrix)
    for col in range(size):
        row = matrix[col]
        for other in range(col + 1, size):
            below = matrix[other]
            ratio = below[col] / row[col]
            if ratio:
                for k in range(col, size + 1):
                    below[k] -= ratio * row[k]
    solution = [0.0] * size
    for col in range(size - 1, -1, -1):
        row = matrix[col]
        solution[col] = (row[size] - sum(row[k] * solution[k] for k in range(col + 1, size))) / row[col]
    return solution


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
