"""Calibration from real ``usage.prompt_tokens``: per-part ridge regression, margins, and bands.

A request's raw count has six parts (``RawParts``): template tokens per request, template tokens
per message, then for ASCII and for other scripts apart, the text's middle count and what the
band's high end adds to it. Per model, a weighted ridge regression with exponential forgetting
fits ``actual ~ sum(coefficient[i] * part[i])`` on relative errors, each coefficient pulled
towards 1 while the data say little about it; on top of the fitted prediction, a margin
(``mean + z * sd`` of ``actual / predicted``, never below 1) is tracked apart for small and for
large prompts and blended by the prompt's size. That gives the band's high end. Its low end only
ever moves down: it is the heuristic's low end times the smallest ``actual / low`` seen lately
(when that is below 1), so a refusal stays certain. Exactly counted requests learn an offset
instead: the smallest and largest ``actual - count`` seen lately widen their single value.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "CalibrationStats",
    "Observation",
    "ObservationSink",
    "PromptScale",
    "RawParts",
    "TextParts",
    "add_parts",
    "subtract_parts",
]

#: Raw (uncalibrated) token counts of a request or of a part of one: (template per request,
#: template per message, ASCII text best fit, ASCII text extra, other-script text best fit,
#: other-script text extra). The extras are what the heuristic's ceiling adds to the best fit; an
#: exact counter's count is the ASCII text part. The raw total is their sum.
RawParts = tuple[float, float, float, float, float, float]
_PARTS = 6
_ZERO: RawParts = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
TextParts = tuple[float, float, float, float]  # the four text parts of one text
_NO_TEXT: TextParts = (0.0, 0.0, 0.0, 0.0)


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
_BAND_MEMORY = 64  # observations behind the low end's factor and an exact count's offsets
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
    __slots__ = (
        "_low_factor",
        "_offsets",
        "diffs",
        "gram",
        "large",
        "last",
        "low_ratios",
        "mix",
        "mix_weight",
        "moment",
        "n",
        "ratio",
        "recent",
        "scale",
        "since_solve",
        "small",
    )

    def __init__(self, scale: PromptScale, mix: TextParts) -> None:
        self.n = 0
        self.since_solve = 0  # observations since the regression was last solved
        self.gram = [[0.0] * _PARTS for _ in range(_PARTS)]  # decayed sum of w * parts * parts^T
        self.moment = [0.0] * _PARTS  # decayed sum of w * parts * actual
        self.small = _Tracker()  # actual / predicted of small prompts
        self.large = _Tracker()  # and of large ones
        self.ratio = _Tracker()  # actual / raw, large prompts weigh more (reported)
        self.mix = list(mix)  # the usual text mix (shares of the four text parts), for factor()
        self.mix_weight = 0.0
        self.recent: dict[int, Estimate] = {}
        self.last: RawParts | None = None
        self.scale = scale
        self.low_ratios: collections.deque[float] = collections.deque(maxlen=_BAND_MEMORY)  # actual / low
        self.diffs: collections.deque[int] = collections.deque(maxlen=_BAND_MEMORY)  # actual - exact count
        # Read by every estimate (a plan makes three), changed by an observation: kept between them.
        self._low_factor: float | None = None
        self._offsets: tuple[int, int] | None = None

    def add_low_ratio(self, ratio: float) -> None:
        self.low_ratios.append(ratio)
        self._low_factor = None

    def add_diff(self, diff: int) -> None:
        self.diffs.append(diff)
        self._offsets = None

    def low_factor(self) -> float:
        """What the heuristic's low end is multiplied by: 1, or less once a count below it was seen."""
        if self._low_factor is None:
            self._low_factor = min(1.0, min(self.low_ratios)) if self.low_ratios else 1.0
        return self._low_factor

    def offsets(self) -> tuple[int, int]:
        """How far below and above an exact count the server has counted lately (0 when never)."""
        if self._offsets is None:
            self._offsets = (min(0, min(self.diffs)), max(0, max(self.diffs))) if self.diffs else (0, 0)
        return self._offsets


@dataclass(frozen=True)
class Estimate:
    """What an estimate was made of, for ``observe``: its raw parts, its low end's raw count, exactness.

    ``known``: the estimate is the server's own count of the prompt (nothing to learn from it).
    """

    parts: RawParts
    low: float
    exact: bool
    known: bool = False


@dataclass(frozen=True, slots=True)
class Observation:
    """One response's lesson, as ``TokenEstimator`` learns it: the raw parts of the estimate that
    was made, its low end's raw count (0: none), whether it was an exact count, and the server's
    ``usage.prompt_tokens``. No text of the prompt: parts are token counts."""

    parts: RawParts
    low: float
    exact: bool
    actual: int


class ObservationSink(Protocol):
    """Where an estimator also sends what it observes (``CalibrationFeed``: other processes)."""

    def publish(self, model: str, observation: Observation) -> None: ...


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
