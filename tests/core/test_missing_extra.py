"""Importing an adapter without its extra names the extra to install (simulated in a subprocess
by making the framework unimportable: ``sys.modules[name] = None``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize(
    ("adapter", "framework", "extra"),
    [
        ("langchain_cerebras_paygo", "langchain_core", "langchain"),
        ("llama_index_cerebras", "llama_index.core", "llama-index"),
    ],
)
def test_import_without_the_extra_names_it(adapter: str, framework: str, extra: str) -> None:
    script = f"""
import sys
for name in {[framework, framework.split(".")[0]]!r}:
    sys.modules[name] = None
try:
    import {adapter}
except ModuleNotFoundError as exc:
    print(exc)
else:
    print("imported")
"""
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert f'pip install "cerebras-paygo[{extra}]"' in done.stdout, done.stdout


def test_the_core_imports_without_either_framework() -> None:
    script = """
import sys
for name in ("langchain_core", "llama_index", "llama_index.core"):
    sys.modules[name] = None
import cerebras_paygo
cerebras_paygo.CerebrasClient
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_redis_url_without_redis_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """CEREBRAS_PAYGO_REDIS_URL set in a venv with only an adapter extra: a ConfigurationError that
    names ``[redis]``, not a bare ModuleNotFoundError at the first call."""
    import sys

    from cerebras_paygo import CerebrasClient
    from cerebras_paygo.errors import ConfigurationError

    monkeypatch.setitem(sys.modules, "redis", None)  # import redis -> ImportError
    with pytest.raises(ConfigurationError, match=r"cerebras-paygo\[redis\]") as info:
        CerebrasClient(api_key="csk-x", redis_url="redis://:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in str(info.value)  # the URL's password is never shown
