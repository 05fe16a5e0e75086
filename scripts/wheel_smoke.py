"""CI smoke test of the built wheel, one fresh virtual environment per adapter extra.

``python scripts/wheel_smoke.py`` builds the wheel (``pip wheel --no-deps``), then for each of
``[langchain]`` and ``[llama-index]``: creates a fresh venv, installs only ``cerebras-paygo[<extra>]``
from that wheel (through pip's configured index, nothing else), and, from a directory outside the
checkout (so only the installed wheel is importable), runs ``scripts/smoke/<extra>.py``: the adapter
against the embedded emulator, a clear error naming the other adapter's extra, and
``cerebras-paygo demo``. Options: ``--extra NAME`` (repeatable), ``--keep`` (keep the venvs), ``--jobs``.
Exit status 1 when any extra fails; its output is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMOKE = Path(__file__).resolve().parent / "smoke"
EXTRAS = {"langchain": SMOKE / "langchain_smoke.py", "llama-index": SMOKE / "llama_index_smoke.py"}


#: A user who installed one adapter extra has none of CI's test settings: no Redis (the ``[redis]``
#: extra is not installed), no key of the real API.
_NOT_A_USERS = ("CEREBRAS_PAYGO_REDIS_URL", "CEREBRAS_PAYGO_REDIS_CLUSTER_URL", "CEREBRAS_API_KEY", "CEREBRAS_BASE_URL")


def run(cmd: list[str], *, cwd: Path, log: list[str], timeout: float = 600) -> bool:
    started = time.monotonic()
    env = {name: value for name, value in os.environ.items() if name not in _NOT_A_USERS}
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    log.append(f"$ {' '.join(cmd)}  ({time.monotonic() - started:.1f} s, exit {result.returncode})")
    if result.returncode != 0:
        log.extend([result.stdout, result.stderr])
    else:
        log.append(result.stdout.rstrip())
    return result.returncode == 0


def build_wheel(out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(ROOT)],
        check=True,
    )
    wheels = sorted(out.glob("cerebras_paygo-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"wheel_smoke: expected one wheel in {out}, found {wheels}")
    return wheels[0]


def smoke(extra: str, wheel: Path, work: Path) -> tuple[str, bool, float, list[str]]:
    started = time.monotonic()
    log: list[str] = []
    env_dir = work / f"venv-{extra}"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    ok = run(
        [str(python), "-m", "pip", "install", "--quiet", f"cerebras-paygo[{extra}] @ {wheel.as_uri()}"],
        cwd=work,
        log=log,
    )
    if ok:
        run([str(python), "-m", "pip", "list", "--format=freeze"], cwd=work, log=log)
        ok = run([str(python), str(EXTRAS[extra])], cwd=work, log=log, timeout=300)
    return extra, ok, time.monotonic() - started, log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", action="append", choices=sorted(EXTRAS), help="only this extra (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (venvs and wheel)")
    parser.add_argument("--jobs", type=int, default=2, help="extras smoke-tested at once (default: 2)")
    args = parser.parse_args(argv)
    extras = args.extra or list(EXTRAS)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="cerebras-paygo-smoke-"))
    try:
        wheel = build_wheel(work / "dist")
        print(f"wheel_smoke: built {wheel.name} in {time.monotonic() - started:.1f} s")
        with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
            outcomes = list(pool.map(lambda extra: smoke(extra, wheel, work), extras))
        failed = False
        for extra, ok, seconds, log in outcomes:
            print(f"== [{extra}]: {'ok' if ok else 'FAILED'} in {seconds:.1f} s")
            if not ok:
                failed = True
                print("\n".join(log))
            else:
                print("\n".join(line for line in log if not line.startswith("$")).strip().splitlines()[-1])
        print(f"wheel_smoke: {'FAILED' if failed else 'ok'} in {time.monotonic() - started:.1f} s")
        return 1 if failed else 0
    finally:
        if args.keep:
            print(f"wheel_smoke: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
