"""The README's code type-checks: ``mypy --strict`` on ``user_script.py`` (both adapters as users
write them: ``ChatCerebras(model=..., max_tokens=512)``, ``stop=``, ``api_base=`` ...)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.typing.mypy_run import mypy_strict

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def test_user_script_passes_mypy_strict(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (it is in the dev extra)")
    done = mypy_strict([str(HERE / "user_script.py")], tmp_path / "mypy-cache")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_typed_names_work_at_runtime() -> None:
    """What the script type-checks is also what the models accept (no model_kwargs detour)."""
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    import warnings

    from langchain_cerebras_paygo import ChatCerebras
    from llama_index_cerebras import Cerebras

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unknown name would warn and land in model_kwargs
        llm = ChatCerebras(model="gpt-oss-120b", max_tokens=512, stop=["\n\n"], timeout=30.0)
        legacy = ChatCerebras(max_completion_tokens=256, stop_sequences="END")
        li = Cerebras(model="gpt-oss-120b", api_base="https://api.cerebras.ai/v1", request_timeout=5.0)
    assert (llm.max_tokens, llm.stop, llm.request_timeout, llm.model_kwargs) == (512, ["\n\n"], 30.0, {})
    assert (legacy.max_tokens, legacy.stop, legacy.model_kwargs) == (256, "END", {})
    assert li.base_url == li.api_base == "https://api.cerebras.ai/v1" and li.timeout == 5.0
