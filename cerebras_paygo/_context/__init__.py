"""Context caps and token counting (issues 7 and 14).

``TokenEstimator`` counts a request's prompt tokens as a band that holds the true count: exact
(one value) where the model's vocabulary is installed (``pip install 'cerebras-paygo[tokenizer]'``,
o200k_harmony for gpt-oss), a calibrated heuristic band elsewhere. ``plan_context`` makes a request
fit the window of the tier in use: it refuses locally only when even the band's low end cannot
fit, and reports the high end for the rate limiter to reserve.

Files: ``exact.py`` (the exact counters), ``heuristic.py`` (the text heuristic), ``calibration.py``
(learning from real counts), ``templates.py`` (chat templates per model family, data in
``cerebras_paygo/data/chat_templates.json``), ``estimator.py`` (the front end), ``policy.py``.
"""

from cerebras_paygo._context.calibration import CalibrationStats
from cerebras_paygo._context.estimator import PromptBreakdown, TokenBand, TokenEstimator, shared_estimator
from cerebras_paygo._context.exact import TokenCounter
from cerebras_paygo._context.heuristic import heuristic_tokens
from cerebras_paygo._context.policy import ContextOverflow, ContextPlan, plan_context
from cerebras_paygo._context.templates import DEFAULT_PROFILES, GENERIC_PROFILE, TemplateProfile

__all__ = [
    "DEFAULT_PROFILES",
    "GENERIC_PROFILE",
    "CalibrationStats",
    "ContextOverflow",
    "ContextPlan",
    "PromptBreakdown",
    "TemplateProfile",
    "TokenBand",
    "TokenCounter",
    "TokenEstimator",
    "heuristic_tokens",
    "plan_context",
    "shared_estimator",
]
