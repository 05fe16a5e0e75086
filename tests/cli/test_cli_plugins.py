"""Plug-in subcommands: ``demo`` comes from the ``cerebras_paygo.commands`` entry point group, and the
core package imports neither the demo nor an adapter framework."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cerebras_paygo._cli.main import COMMANDS_GROUP, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "cerebras_paygo"


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute module an import statement in ``path`` names (also inside functions)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_no_core_module_imports_langchain_or_llama_index() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 40, "the walk found the core package"
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in files
        for line, name in _imports(path)
        if name.split(".")[0].startswith(("langchain", "llama_index"))
    ]
    assert not offenders, offenders


def test_the_core_does_not_import_its_demo() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted(CORE.rglob("*.py"))
        for line, name in _imports(path)
        if name.split(".")[0] == "cerebras_paygo_demo"
    ]
    assert not offenders, offenders


def test_the_demo_is_an_installed_entry_point() -> None:
    from importlib.metadata import entry_points

    values = {e.value for e in entry_points(group=COMMANDS_GROUP) if e.name == "demo"}
    assert values == {"cerebras_paygo_demo.command:register"}


def test_help_lists_the_demo() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cerebras_paygo._cli.main", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo      see it work: a LangChain batch" in result.stdout
    for command in ("emulate", "models", "check"):
        assert f"    {command}  " in result.stdout
    assert result.stderr == ""


def test_building_the_parser_imports_no_langchain() -> None:
    code = "import sys; from cerebras_paygo._cli.main import build_parser; build_parser(); " + (
        "print(sorted(m for m in sys.modules if m.startswith(('langchain', 'llama_index'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A second installed distribution (a ``.dist-info`` on ``sys.path``) with three plug-ins."""
    info = tmp_path / "fake_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{COMMANDS_GROUP}]\n"
        "hello = fake_plugin_mod:register\n"
        "broken = fake_plugin_missing:register\n"
        "models = fake_plugin_mod:register\n"  # a built-in name: the built-in wins
    )
    (tmp_path / "fake_plugin_mod.py").write_text(
        textwrap.dedent(
            """
            def register(subparsers):
                parser = subparsers.add_parser("hello", help="say hello")
                parser.set_defaults(func=lambda args: print("hello from a plug-in") or 0)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_plugin_runs_and_a_broken_one_is_reported(plugins: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hello"]) == 0
    captured = capsys.readouterr()
    assert "hello from a plug-in" in captured.out
    assert "command 'broken' (fake_plugin_missing:register) failed to load" in captured.err
    assert "ModuleNotFoundError" in captured.err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["models", "--help"])
    assert "The model catalog for one tier" in capsys.readouterr().out, "the built-in models command"
