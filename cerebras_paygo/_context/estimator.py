"""Token estimation, the front end: a band ``(low, high)`` that holds a request's true prompt tokens.

What a request is counted with, per model family (``templates.family_for``):

- **exact**: the family's vocabulary is available (the optional tokenizer, ``exact.py``; o200k_harmony
  for gpt-oss) and its template is rendered token for token (``templates.py``): the band is one
  value (``low == high``), widened only by offsets the server's own counts have shown;
- **a user counter** (a callable or a ``tokenizer.json``): its count for the text, the template's
  costs around it;
- **the heuristic** (``heuristic.py``) otherwise: a band around the o200k count of each text
  (widened by the family's ``heuristic_scale`` for other vocabularies), calibrated per model from
  real ``usage.prompt_tokens`` (``calibration.py``).

``plan_context`` refuses a request before sending only when even the low end does not fit, and
the rate limiter reserves the high end (``estimate_request``).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import NamedTuple, cast

from cerebras_paygo._context import templates
from cerebras_paygo._context.calibration import (
    _COEF_MAX,
    _EXACT_MIX,
    _FACTOR_MAX,
    _FACTOR_MIN,
    _HEURISTIC_MIX,
    _MEAN_PRIOR_WEIGHT,
    _PARTS,
    _PRIOR_WEIGHT,
    _RATIO_MAX,
    _RATIO_MIN,
    _RECENT,
    _SIZE_WEIGHT,
    _TEXT_CACHE_SIZE,
    _ZERO,
    CalibrationStats,
    Estimate,
    Observation,
    ObservationSink,
    PromptScale,
    RawParts,
    TextParts,
    _Calibration,
    _ridge,
    _Tracker,
    add_parts,
)
from cerebras_paygo._context.exact import TokenCounter, VocabularyCounter, tokenizer_file_counter, vocabulary_counter
from cerebras_paygo._context.heuristic import heuristic_band
from cerebras_paygo._context.templates import (
    CONTENT,
    SPECIAL,
    Family,
    TemplateProfile,
    content_text,
    keeps_reasoning_from,
)
from cerebras_paygo._wire import ChatCompletionRequest
from cerebras_paygo.errors import ConfigurationError, ContextWindowExceededError

__all__ = ["PromptBreakdown", "TokenBand", "TokenEstimator", "shared_estimator"]


class TokenBand(NamedTuple):
    """A prompt's token count as a band that holds the true count: ``low <= true <= high``.

    ``exact``: counted with the model's vocabulary and template (``low == high`` unless the
    server's counts have shown an offset).
    """

    low: int
    high: int
    exact: bool


#: A unit's count: its raw parts (what the high end and calibration use) and its low end.
Counted = tuple[RawParts, float]


@dataclass(frozen=True)
class PromptBreakdown:
    """Raw (uncalibrated) counts of one request: the fixed part plus one entry per message.

    ``fixed`` and ``messages`` are raw totals of the high end; ``fixed_parts`` and ``message_parts``
    split them into ``RawParts`` (which ``PromptScale.tokens`` turns into a calibrated high end);
    ``fixed_low`` and ``message_low`` are the low ends; ``exact`` says the counts are exact.
    """

    model: str
    fixed: float
    messages: tuple[float, ...]
    fixed_parts: RawParts = _ZERO
    message_parts: tuple[RawParts, ...] = ()
    fixed_low: float = 0.0
    message_low: tuple[float, ...] = ()
    exact: bool = False

    @property
    def total(self) -> float:
        return self.fixed + sum(self.messages)

    @property
    def parts(self) -> RawParts:
        """The request's ``RawParts`` (the fixed part and every message)."""
        return add_parts(self.fixed_parts, *self.message_parts)

    @property
    def low(self) -> float:
        return self.fixed_low + sum(self.message_low)


_NO_TEXT: tuple[TextParts, float] = ((0.0, 0.0, 0.0, 0.0), 0.0)
_RESOLVE = object()  # "look the family's vocabulary up" (``_text``'s callers usually pass it)


class TokenEstimator:
    """Prompt-token bands for chat requests: exact where the vocabulary is known, calibrated elsewhere.

    Thread-safe: counting is pure, calibration state sits behind one lock. Share one per process
    (``shared_estimator()``) so every client learns from every response.

    Args:
        counter: an exact counter for text of every model: a callable ``str -> int``, or a path to a
            ``tokenizer.json`` the user already has (needs ``pip install tokenizers``). ``None``:
            the model family's vocabulary when the optional tokenizer is installed, else the heuristic.
        vocabularies: use the optional tokenizer's vocabularies when installed (``False``: never,
            as if it were not installed).
        quantile: the quantile of ``actual / predicted`` the calibrated high end aims at.
        halflife: observations after which an old observation weighs half as much.
        prior_factor: the high end's margin before any observation (1.0: the heuristic's high end
            already holds the true count).
        prior_sd: the assumed spread of ``actual / predicted`` while observations are few.
        profiles: template profiles by model id prefix, over the families of ``data/chat_templates.json``
            (a family given here is counted with the profile's fixed costs).
        min_text_factor: a calibrated high end is never below this times the text's middle count.

    Raises:
        ConfigurationError: a bad argument, a missing tokenizer file, or ``tokenizers`` not installed.
    """

    def __init__(
        self,
        counter: TokenCounter | str | os.PathLike[str] | None = None,
        *,
        vocabularies: bool = True,
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
            self._count = tokenizer_file_counter(counter)
        elif callable(counter):
            self._count = counter
        else:
            raise ConfigurationError(f"counter must be a callable str -> int or a tokenizer.json path, not {counter!r}")
        exact = self._count is not None
        self.vocabularies = bool(vocabularies)
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
        self._overrides = {
            prefix: Family(prefix, "profile", None, profile) for prefix, profile in (profiles or {}).items()
        }
        self._family_cache: dict[str, Family] = {}
        self._text_cache: dict[tuple[int, int, object], tuple[TextParts, float]] = {}  # atomic dict ops
        self._lock = threading.Lock()
        self._state: dict[str, _Calibration] = {}
        self._feeds: tuple[ObservationSink, ...] = ()
        # Prompts the server has counted for us (its context_length_exceeded says how long), per model:
        # request digest -> prompt tokens. Sending the same prompt again is then counted exactly.
        self._server_counts: dict[str, collections.OrderedDict[bytes, int]] = {}

    # -- counting (pure) --

    @property
    def exact(self) -> bool:
        """Whether text is counted by a user-supplied exact counter."""
        return self._count is not None

    def family(self, model: str) -> Family:
        """The template family of ``model`` (``profiles`` given to the constructor first)."""
        family = self._family_cache.get(model)
        if family is None:
            family = templates.family_for(model)
            for prefix in sorted(self._overrides, key=len, reverse=True):
                if model.startswith(prefix) and len(prefix) >= len(family.prefix):
                    family = self._overrides[prefix]
                    break
            if len(self._family_cache) < 1024:
                self._family_cache[model] = family
        return family

    def profile(self, model: str) -> TemplateProfile:
        """The template profile of ``model``'s family (its fixed costs, for ``profile`` families)."""
        return self.family(model).profile

    def vocabulary(self, model: str) -> VocabularyCounter | None:
        """The exact counter of ``model``'s vocabulary, when the optional tokenizer has it (and no ``counter``)."""
        return self._vocabulary_of(self.family(model))

    def _vocabulary_of(self, family: Family) -> VocabularyCounter | None:
        if self._count is not None or not self.vocabularies:
            return None
        return vocabulary_counter(family.vocabulary)

    def counts_exactly(self, model: str) -> bool:
        """Whether ``model``'s prompts are counted token for token (vocabulary and template)."""
        return self.vocabulary(model) is not None and self.family(model).format in ("harmony", "chatml")

    def count_text(self, text: str, model: str = "") -> int:
        """Tokens of ``text`` alone: an exact count (counter, or ``model``'s vocabulary), or the heuristic's middle."""
        if not text:
            return 0
        parts = self._text(text, self.family(model))[0]
        return math.ceil(parts[0] + parts[2] - 1e-9)

    def _text(self, text: str, family: Family, vocabulary: object = _RESOLVE) -> tuple[TextParts, float]:
        """(the four raw text parts, the low end) of a text, memoized: chat histories are sent again.
        ``vocabulary``: the family's, when the caller has resolved it already (once per prompt)."""
        if not text:
            return _NO_TEXT
        count = self._count
        known = self._vocabulary_of(family) if vocabulary is _RESOLVE else cast("VocabularyCounter | None", vocabulary)
        mode: object = "counter" if count is not None else known.name if known else family.heuristic_scale
        key = (hash(text), len(text), mode)
        cached = self._text_cache.get(key)
        if cached is not None:
            return cached
        exact_count = count if count is not None else known
        if exact_count is not None:
            n = float(exact_count(text))
            value: tuple[TextParts, float] = ((n, 0.0, 0.0, 0.0), n)
        else:
            (a_low, a_mid, a_high), (o_low, o_mid, o_high) = heuristic_band(text)
            s_low, s_high = family.heuristic_scale
            value = (
                (a_mid, max(a_high * s_high - a_mid, 0.0), o_mid, max(o_high * s_high - o_mid, 0.0)),
                max((a_low + o_low) * s_low, 0.0),
            )
        if len(self._text_cache) >= _TEXT_CACHE_SIZE:
            self._text_cache.clear()
        self._text_cache[key] = value
        return value

    def breakdown(self, request: ChatCompletionRequest) -> PromptBreakdown:
        """Raw counts of the fixed part (template, tools, response format) and of each message."""
        family = self.family(request.model)
        if family.format == "profile" or (family.format == "chatml" and self.vocabulary(request.model) is None):
            fixed, messages, exact = (
                self._profile_counts(request, family),
                self._profile_messages(request, family),
                False,
            )
        else:
            fixed, messages, exact = self._rendered_counts(request, family)
        return PromptBreakdown(
            model=request.model,
            fixed=sum(fixed[0]),
            messages=tuple(sum(parts) for parts, _ in messages),
            fixed_parts=fixed[0],
            message_parts=tuple(parts for parts, _ in messages),
            fixed_low=fixed[1],
            message_low=tuple(low for _, low in messages),
            exact=exact,
        )

    def _rendered_counts(self, request: ChatCompletionRequest, family: Family) -> tuple[Counted, list[Counted], bool]:
        """Counts of a harmony or chatml rendering: exact with the vocabulary, else template table plus heuristic."""
        fixed_unit, units = templates.render_units(request, family)
        vocabulary = self.vocabulary(request.model) if self._count is None else None
        exact = vocabulary is not None
        fixed = self._unit(fixed_unit, family, vocabulary, fixed_part=True)
        if family.format == "chatml" and (request.tools or request.response_format):
            # chatml families' tool instructions are not rendered: their profile's costs, so not exact
            exact = False
            more, more_low = self._profile_counts(request, family)
            request_cost = float(family.profile.request)  # the rendered fixed unit stands for it
            fixed = (add_parts(fixed[0], (more[0] - request_cost, *more[1:])), fixed[1] + more_low - 0.5 * request_cost)
        messages = [self._unit(unit, family, vocabulary, fixed_part=False) for unit in units]
        return fixed, messages, exact

    def _unit(
        self, unit: Sequence[tuple[int, str]], family: Family, vocabulary: VocabularyCounter | None, *, fixed_part: bool
    ) -> Counted:
        specials = 0.0
        if vocabulary is not None:  # exact: every run between special tokens counted as one text
            total = 0.0
            run: list[str] = []
            for kind, chunk in unit:
                if kind == SPECIAL:
                    specials += 1.0
                    if run:
                        total += self._text("".join(run), family, vocabulary)[1]
                        run = []
                else:
                    run.append(chunk)
            if run:
                total += self._text("".join(run), family, vocabulary)[1]
            count = specials + total
            return ((count, 0.0, 0.0, 0.0, 0.0, 0.0) if fixed_part else (0.0, 0.0, count, 0.0, 0.0, 0.0)), count
        table = templates.template_tokens(family.vocabulary or "")
        template = 0.0
        text = extra = other = other_extra = low = 0.0
        for kind, piece in unit:
            if kind == SPECIAL:
                template += 1.0
                continue
            if not piece:
                continue
            known = table.get(piece) if kind != CONTENT else None
            if known is None and kind != CONTENT and "Current date: " in piece:
                known = table.get(_undated(piece))
            if known is not None:
                template += known
                continue
            parts, piece_low = self._text(piece, family)
            text += parts[0]
            extra += parts[1]
            other += parts[2]
            other_extra += parts[3]
            low += piece_low
        if fixed_part:
            return (template, 0.0, text, extra, other, other_extra), template + low
        return (0.0, template, text, extra, other, other_extra), template + low

    def _profile_counts(self, request: ChatCompletionRequest, family: Family) -> Counted:
        """The fixed part of a ``profile`` family: its request cost, tools and response format."""
        profile = family.profile
        template = float(profile.request)
        fixed, low = (0.0, 0.0, 0.0, 0.0), 0.0
        if request.tools:
            template += profile.tools + profile.tool * len(request.tools)
            fixed, low = self._text(templates._json(request.tools), family)
        response_format = request.response_format
        if response_format and response_format.get("type") in ("json_schema", "json_object"):
            template += profile.response_format
            more, more_low = self._text(templates._json(response_format), family)
            fixed = (fixed[0] + more[0], fixed[1] + more[1], fixed[2] + more[2], fixed[3] + more[3])
            low += more_low
        # the profile's costs are a guess of the template: half of them for the low end
        return (template, 0.0, *fixed), 0.5 * template + low

    def _profile_messages(self, request: ChatCompletionRequest, family: Family) -> list[Counted]:
        profile = family.profile
        keep_from = keeps_reasoning_from(request)
        out: list[Counted] = []
        for index, message in enumerate(request.messages):
            overhead = float(profile.message)
            pieces = [content_text(message)]
            if message.name:
                overhead += profile.name
                pieces.append(message.name)
            for call in message.tool_calls or ():
                overhead += profile.tool_call
                pieces += [call.function.name or "", call.function.arguments or ""]
            if message.reasoning and index >= keep_from:
                pieces.append(message.reasoning)
            if message.role == "tool":
                overhead += profile.tool_result
            text = extra = other = other_extra = low = 0.0
            for piece in pieces:
                parts, piece_low = self._text(piece, family)
                text += parts[0]
                extra += parts[1]
                other += parts[2]
                other_extra += parts[3]
                low += piece_low
            out.append(((0.0, overhead, text, extra, other, other_extra), 0.5 * overhead + low))
        return out

    def raw_estimate(self, request: ChatCompletionRequest) -> float:
        """The uncalibrated high end of ``request`` (template plus the texts' high ends)."""
        return sum(self.request_parts(request))

    def request_parts(self, request: ChatCompletionRequest) -> RawParts:
        """The ``RawParts`` of the whole request."""
        return self.breakdown(request).parts

    def band(self, request: ChatCompletionRequest) -> TokenBand:
        """The band that holds ``request``'s prompt tokens, calibrated; the high end is remembered for ``observe``.

        A prompt the server has counted (``remember_server_count``) is that count, exactly.
        """
        known = self.server_count(request.model, request)
        if known is not None:
            return self.known_band(request.model, known)
        breakdown = self.breakdown(request)
        return self.bounds(request.model, breakdown.parts, breakdown.low, breakdown.exact)

    # -- counting for trimming (LangChain's trim_messages, LlamaIndex memory buffers) --

    def prompt_tokens(self, request: ChatCompletionRequest) -> int:
        """``request``'s prompt tokens for a caller that trims to fit: exact when it can be (the
        tokenizer extra, or the server's own count of this prompt), else the band's high end (so a
        history cut to N tokens is at most N). Calibrated; nothing is remembered for ``observe``."""
        known = self.server_count(request.model, request)
        if known is not None:
            return known
        breakdown = self.breakdown(request)
        return self.bounds(request.model, breakdown.parts, breakdown.low, breakdown.exact, remember=False).high

    def text_band(self, text: str, model: str = "") -> TokenBand:
        """The band of ``text`` alone (no chat template) in ``model``'s vocabulary, uncalibrated.

        Exact (one value) with the tokenizer extra or a ``counter``; else the heuristic's band.
        """
        if not text:
            return TokenBand(0, 0, True)
        parts, low = self._text(text, self.family(model))
        if self._count is not None or self.vocabulary(model) is not None:
            count = round(parts[0])
            return TokenBand(count, count, True)
        return TokenBand(max(math.floor(low + 1e-9), 0), math.ceil(sum(parts) - 1e-9), False)

    def text_tokens(self, text: str, model: str = "") -> int:
        """Tokens of ``text`` alone: exact when the vocabulary (or a ``counter``) is there, else the high end."""
        return self.text_band(text, model).high

    def token_ids(self, text: str, model: str = "") -> list[int]:
        """The token ids of ``text`` alone in ``model``'s vocabulary.

        Raises:
            ConfigurationError: the vocabulary is not installed (``pip install 'cerebras-paygo[tokenizer]'``),
                turned off, or this estimator counts with a ``counter`` (counts only, no ids).
        """
        vocabulary = self.vocabulary(model)
        if vocabulary is None:
            family = self.family(model)
            why = (
                "this estimator counts with a user counter, which gives counts, not ids"
                if self._count is not None
                else f"the {family.vocabulary!r} vocabulary needs the optional tokenizer: "
                "pip install 'cerebras-paygo[tokenizer]' (and CEREBRAS_PAYGO_TOKENIZER not 'off')"
                if family.vocabulary
                else f"no vocabulary of {model!r} is known (its family counts with the heuristic)"
            )
            raise ConfigurationError(f"token ids of {model!r} are not available: {why}")
        return vocabulary.ids(text)

    def tokenizer(self, model: str = "") -> Callable[[str], list[int]]:
        """A ``str -> list[int]`` for frameworks that count with ``len(tokenizer(text))`` (LlamaIndex).

        With the model's vocabulary: its token ids. Without: a list of ``text_tokens(text, model)``
        zeros, so its length is the safe (high-end) count; the ids themselves are not known then.
        """
        if self.vocabulary(model) is not None:
            return functools.partial(self.token_ids, model=model)
        return functools.partial(_length_only, self, model)

    # -- prompts the server has counted --

    def server_count(self, model: str, request: ChatCompletionRequest) -> int | None:
        """The prompt tokens the server counted for this same prompt of ``model`` (None: never counted).

        Free when nothing is remembered for ``model``; else one hash of the prompt's fields.
        """
        with self._lock:
            remembered = self._server_counts.get(model)
            if not remembered:
                return None
        digest = prompt_digest(request)
        with self._lock:
            count = remembered.get(digest)
            if count is not None:
                remembered.move_to_end(digest)
        return count

    def remember_server_count(self, model: str, request: ChatCompletionRequest, prompt_tokens: int) -> None:
        """Remember the server's count of ``request``'s prompt for ``model`` (a bounded LRU per model)."""
        if prompt_tokens <= 0:
            return
        digest = prompt_digest(request)
        with self._lock:
            remembered = self._server_counts.get(model)
            if remembered is None:
                if len(self._server_counts) >= _SERVER_COUNT_MODELS:
                    del self._server_counts[next(iter(self._server_counts))]
                remembered = self._server_counts[model] = collections.OrderedDict()
            remembered[digest] = int(prompt_tokens)
            remembered.move_to_end(digest)
            while len(remembered) > _SERVER_COUNTS:
                remembered.popitem(last=False)

    def known_band(self, model: str, count: int, *, remember: bool = True) -> TokenBand:
        """``TokenBand(count, count, exact=True)`` for a count the server gave; remembered for ``observe``."""
        band = TokenBand(count, count, True)
        if remember and count > 0:
            with self._lock:
                state = self._state.get(model)
                if state is None:
                    state = self._state[model] = _Calibration(self._prior_scale, self._mix)
                self._remember(state, count, Estimate((float(count), 0.0, 0.0, 0.0, 0.0, 0.0), count, True, known=True))
        return band

    def estimate_request(self, request: ChatCompletionRequest) -> int:
        """The high end of ``band(request)``: what the rate limiter reserves."""
        return self.band(request).high

    def estimate_text(self, text: str, model: str = "") -> int:
        """Calibrated high end of a bare text (no chat template) for ``model``."""
        if not text:
            return 0
        parts, low = self._text(text, self.family(model))
        exact = self._count is not None or self.vocabulary(model) is not None
        return self.bounds(model, (0.0, 0.0, *parts), low, exact, remember=False).high

    def bounds(
        self,
        model: str,
        parts: RawParts,
        low: float,
        exact: bool,
        *,
        scale: PromptScale | None = None,
        remember: bool = True,
    ) -> TokenBand:
        """The calibrated band of raw ``parts`` (high end) and raw ``low`` for ``model``.

        Exact counts move only by the offsets the server has shown; a heuristic's high end goes
        through ``scale`` (default: the model's current ``scale(model)``) and its low end is
        lowered by ``low_factor`` when the server ever counted below it.
        """
        with self._lock:
            state = self._state.get(model)
            if exact:
                count = round(sum(parts))
                below, above = state.offsets() if state is not None else (0, 0)
                band = TokenBand(max(count + below, 0), count + above, below == above == 0)
            else:
                if scale is None:
                    scale = self._prior_scale if state is None else state.scale
                high = scale.tokens(parts)
                factor = 1.0 if state is None else state.low_factor()
                low_end = max(math.floor(low * factor + 1e-9), 0)
                band = TokenBand(min(low_end, high), high, False)
            if remember and band.high > 0:
                if state is None:
                    state = self._state[model] = _Calibration(self._prior_scale, self._mix)
                self._remember(state, band.high, Estimate(parts, low, exact))
        return band

    @staticmethod
    def _remember(state: _Calibration, estimate: int, entry: Estimate) -> None:
        recent = state.recent
        if len(recent) >= _RECENT:
            del recent[next(iter(recent))]
        recent[estimate] = entry
        if not entry.exact:
            state.last = entry.parts

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
                self._remember(state, estimate, Estimate(parts, sum(parts), False))
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
                state = self._state[model] = _Calibration(self._prior_scale, self._mix)
            entry = state.recent.get(estimated)
            if entry is not None and entry.known:
                return  # the server's own count of this prompt: nothing to learn about our counting
            if entry is not None:
                observation = Observation(entry.parts, entry.low, entry.exact, actual_prompt_tokens)
            else:
                observation = Observation(self._guess_parts(state, estimated), 0.0, False, actual_prompt_tokens)
            self._learn(state, observation)
            feeds = self._feeds
        for feed in feeds:  # other processes learn it too (queued; never I/O here)
            feed.publish(model, observation)

    def learn(self, model: str, observation: Observation) -> None:
        """Learn an observation made elsewhere (another process's, through a ``CalibrationFeed``)."""
        if observation.actual <= 0:
            return
        with self._lock:
            state = self._state.get(model)
            if state is None:
                state = self._state[model] = _Calibration(self._prior_scale, self._mix)
            self._learn(state, observation)

    def _reset_lock_after_fork(self) -> None:
        self._lock = threading.Lock()

    def add_feed(self, feed: ObservationSink) -> None:
        """Publish every later observation to ``feed`` as well (once per feed)."""
        with self._lock:
            if feed not in self._feeds:
                self._feeds = (*self._feeds, feed)

    def _learn(self, state: _Calibration, observation: Observation) -> None:
        """Fold one observation into ``state`` (under the lock)."""
        parts = observation.parts
        actual = float(observation.actual)
        if observation.exact:
            # an exact count: learn how far the server's count is from it
            state.add_diff(observation.actual - round(sum(parts)))
            state.n += 1
            return
        if observation.low > 0:
            state.add_low_ratio(actual / observation.low)
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
        # The regression is solved again (a 6x6 system, ~25 us) while it is young, when this
        # observation is off by more than _RESOLVE_ERROR under the current coefficients, and at
        # least every _RESOLVE_EVERY observations; in between, the coefficients stand (their
        # statistics above are always kept up to date, so nothing is lost, only deferred).
        coefficients = state.scale.coefficients
        current = sum(c * p for c, p in zip(coefficients, parts, strict=True))
        state.since_solve += 1
        if (
            state.n < _RESOLVE_WARMUP
            or state.since_solve >= _RESOLVE_EVERY
            or current <= 0
            or abs(actual / current - 1.0) > _RESOLVE_ERROR
        ):
            coefficients = _ridge(gram, moment)
            state.since_solve = 0
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
            state.mix = [share + step * (part / text - share) for share, part in zip(state.mix, parts[2:], strict=True)]
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

    def low_factor(self, model: str) -> float:
        """What the heuristic's low end of ``model`` is multiplied by now (1 until the server counted below it)."""
        with self._lock:
            state = self._state.get(model)
            return 1.0 if state is None else state.low_factor()

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
        request: ChatCompletionRequest | None = None,
    ) -> int | None:
        """Learn from a server ``context_length_exceeded`` ("Current length is X while limit is Y").

        X is the prompt plus the ``max_completion_tokens`` reservation, so the real prompt is
        ``X - max_completion_tokens``; it is fed to ``observe`` and, given the ``request`` that was
        sent, remembered as that prompt's exact count (``remember_server_count``): the same prompt
        sent again is refused locally, with certainty. Returns that prompt length, or ``None`` when
        the error carries no length or was raised locally (our own estimate).
        """
        if err.local or err.current_length is None:
            return None
        actual = err.current_length - max(0, max_completion_tokens)
        if actual <= 0:
            return None
        self.observe(model, estimated_prompt, actual)
        if request is not None:
            self.remember_server_count(model, request, actual)
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
                self._server_counts.clear()
            else:
                self._state.pop(model, None)
                self._server_counts.pop(model, None)


#: Observations during which the regression is solved on every one.
_RESOLVE_WARMUP = 32
#: After that, solved at least every this many observations...
_RESOLVE_EVERY = 8
#: ...and at once when an observation is off by more than this under the current coefficients.
_RESOLVE_ERROR = 0.05

_SERVER_COUNTS = 256  # prompts remembered per model
_SERVER_COUNT_MODELS = 64
#: The request fields the server's prompt is rendered from (not max_completion_tokens, stream, sampling...).
_PROMPT_FIELDS = frozenset(
    {"messages", "tools", "tool_choice", "response_format", "reasoning_effort", "clear_thinking"}
)


def _length_only(estimator: TokenEstimator, model: str, text: str) -> list[int]:
    return [0] * estimator.text_tokens(text, model)


def prompt_digest(request: ChatCompletionRequest) -> bytes:
    """A digest of what ``request``'s prompt is rendered from: equal digests, equal prompts (no text kept)."""
    data = request.model_dump_json(include=set(_PROMPT_FIELDS), exclude_none=True)
    return hashlib.blake2b(data.encode("utf-8"), digest_size=16).digest()


def _undated(text: str) -> str:
    """A harmony preamble with its date replaced by the placeholder the template table is keyed by."""
    start = text.index("Current date: ") + len("Current date: ")
    return text[:start] + templates.DATE_PLACEHOLDER + text[start + len(templates.DATE_PLACEHOLDER) :]


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
