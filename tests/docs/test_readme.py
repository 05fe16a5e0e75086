"""Every ```python block of README.md runs as written, against the emulator over loopback HTTP.

Each block runs alone, in a fresh namespace, the way a user pastes it into a script: the key and
the URL come from ``CEREBRAS_API_KEY`` / ``CEREBRAS_BASE_URL`` (set to the emulator's), nothing else
from the environment. A block with a top-level ``await`` runs in an event loop. See
``readme_blocks.py`` for the marks a block that cannot run carries.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cerebras_paygo.emulator.pytest_plugin import EmulatorHandle
from tests.docs.readme_blocks import MARKS, README, ROOT, Block, python_blocks, readme_blocks
from tests.typing.mypy_run import mypy_strict

BLOCKS = readme_blocks()

#: What a block's imports need installed (the extras): the suite skips, not fails, without them.
_NEEDS = {
    "langchain_core": "langchain_core",
    "langchain_cerebras_paygo": "langchain_core",
    "llama_index": "llama_index.core",
    "llama_index_cerebras": "llama_index.core",
    "redis": "redis",
}

#: The package's other environment variables: a developer's shell must not change what a block does.
_FOREIGN_ENV = ("CEREBRAS_API_BASE", "CEREBRAS_TIER", "CEREBRAS_PAYGO_CATALOG")


def _imported(block: Block) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(block.code)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _skip_without_extras(block: Block) -> None:
    for name in sorted(_imported(block)):
        needed = _NEEDS.get(name)
        if needed is not None and importlib.util.find_spec(needed) is None:
            pytest.skip(f"{block.id} imports {name}, which needs {needed} (pip install -e '.[all]')")


def run_block(block: Block) -> dict[str, Any]:
    """Compile the block as ``README.md`` (its own line numbers) and run it; return its namespace."""
    code = compile(block.padded(), str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    if code.co_flags & inspect.CO_COROUTINE:
        coroutine = eval(code, namespace)
        asyncio.run(coroutine)
    else:
        exec(code, namespace)
    return namespace


@pytest.fixture
def readme_env(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    """The environment a README reader has: a key and a URL (the emulator's), a scratch directory."""
    for name in _FOREIGN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CEREBRAS_API_KEY", emulator.api_key)
    monkeypatch.setenv("CEREBRAS_BASE_URL", emulator.base_url)
    monkeypatch.chdir(tmp_path)
    settings = _llama_index_settings()
    saved = dict(vars(settings)) if settings is not None else None
    try:
        yield
    finally:
        if settings is not None and saved is not None:  # ``Settings.llm = ...`` is process-wide
            vars(settings).clear()
            vars(settings).update(saved)


def _llama_index_settings() -> Any:
    if importlib.util.find_spec("llama_index.core") is None:
        return None
    from llama_index.core import Settings

    return Settings


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
@pytest.mark.usefixtures("readme_env")
def test_readme_block_runs(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    if block.mark not in (None, *MARKS):
        pytest.fail(f"README.md:{block.line}: unknown mark 'snippet: {block.mark}' (known: {', '.join(MARKS)})")
    if block.mark == "skip":
        pytest.skip(f"README.md:{block.line}: {block.reason or 'marked skip'}")
    if block.mark == "needs-redis":
        if not os.environ.get("CEREBRAS_PAYGO_REDIS_URL"):
            pytest.skip(f"{block.id} needs Redis: set CEREBRAS_PAYGO_REDIS_URL")
        import cerebras_paygo._settings
        import cerebras_paygo._shared

        # The suite hides the variable from clients (tests/conftest.py); this block is meant to read it.
        monkeypatch.setattr(cerebras_paygo._shared, "redis_url_from_env", cerebras_paygo._settings.redis_url_from_env)
    _skip_without_extras(block)
    run_block(block)


def test_readme_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    """What runs also type-checks: each unmarked block as its own module, one ``mypy --strict`` run.

    The blocks keep README.md's line numbers, in files named by block id. The cache is the
    project's own ``.mypy_cache`` (what ``mypy`` in CI has just filled): about 2 s warm, 15 s cold.
    """
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (it is in the dev extra)")
    files = []
    for block in BLOCKS:
        if block.mark is None:
            path = tmp_path / f"readme_{block.id.replace('-', '_')}.py"
            path.write_text(block.padded(), encoding="utf-8")
            files.append(str(path))
    done = mypy_strict(files, ROOT / ".mypy_cache")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_python_fence_is_collected() -> None:
    """The extractor misses no block (an indented one in a list included) and keeps their lines."""
    lines = README.read_text(encoding="utf-8").splitlines()
    openers = [n for n, line in enumerate(lines, 1) if line.strip() in ("```python", "```py")]
    assert [block.line - 1 for block in BLOCKS] == openers
    assert len({block.id for block in BLOCKS}) == len(BLOCKS)


def test_marks_and_ids_are_read() -> None:
    text = "\n".join(
        [
            "## A `heading`!",
            "```python",
            "x = 1",
            "```",
            "",
            "<!-- snippet: skip a fragment -->",
            "- item:",
            "  ```python",
            "  if x:",
            "      y = 2",
            "  ```",
            "```bash",
            "echo no",
            "```",
        ]
    )
    first, second = python_blocks(text)
    assert (first.id, first.line, first.code, first.mark) == ("a-heading-1", 3, "x = 1\n", None)
    assert (second.id, second.code, second.mark, second.reason) == ("a-heading-2", "if x:\n    y = 2\n", None, "")
    marked = python_blocks("<!-- snippet: skip a fragment -->\n```python\npass\n```\n")
    assert (marked[0].id, marked[0].mark, marked[0].reason) == ("top-1", "skip", "a fragment")


def test_top_level_await_runs_in_a_loop() -> None:
    block = Block(heading="x", index=1, line=1, code="import asyncio\nawait asyncio.sleep(0)\ndone = True\n")
    assert run_block(block)["done"] is True
