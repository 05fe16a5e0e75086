"""Context caps and token estimation (issue 7).

``TokenEstimator`` counts a request's prompt tokens without a tokenizer download, conservatively,
and learns per model from real ``usage.prompt_tokens``; ``plan_context`` makes a request fit the
window of the tier in use (raise, trim the oldest turns, or shrink ``max_completion_tokens``).
"""

from cerebras_paygo._context.estimator import (
    DEFAULT_PROFILES,
    GENERIC_PROFILE,
    CalibrationStats,
    PromptBreakdown,
    TemplateProfile,
    TokenCounter,
    TokenEstimator,
    heuristic_tokens,
    shared_estimator,
)
from cerebras_paygo._context.policy import ContextOverflow, ContextPlan, plan_context

__all__ = [
    "DEFAULT_PROFILES",
    "GENERIC_PROFILE",
    "CalibrationStats",
    "ContextOverflow",
    "ContextPlan",
    "PromptBreakdown",
    "TemplateProfile",
    "TokenCounter",
    "TokenEstimator",
    "heuristic_tokens",
    "plan_context",
    "shared_estimator",
]
