"""What both smoke scripts check: the wheel (not a checkout) is imported, the other adapter's import
names its extra, and ``cerebras-paygo demo`` runs."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path


def check_installed_from_wheel() -> None:
    import cerebras_paygo

    where = Path(cerebras_paygo.__file__).resolve()
    assert "site-packages" in where.parts, f"cerebras_paygo imported from {where}, not from the installed wheel"
    print(f"cerebras_paygo {cerebras_paygo.__version__} from {where.parent}")


def check_missing_extra(module: str, extra: str) -> None:
    error: ModuleNotFoundError | None = None
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        error = exc
    assert error is not None, f"{module} imported although [{extra}] is not installed"
    assert f'pip install "cerebras-paygo[{extra}]"' in str(error), str(error)
    print(f"import {module} without its extra: {error}")


def run_demo(*expected: str) -> None:
    cli = Path(sys.executable).parent / "cerebras-paygo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEREBRAS_")}
    result = subprocess.run(
        [str(cli), "demo", "--requests", "6", "--concurrency", "2", "--tpm", "100000"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for text in ("6 sent, 6 answered, 0 failed", "0 request(s) lost", *expected):
        assert text in " ".join(result.stdout.split()), (text, result.stdout)
    print("cerebras-paygo demo: ok")
