"""The layering rules, checked on the source: no import cycle in the core, a flow without I/O, and
adapters that only translate. Imports are read with ``ast`` (module level and inside functions; a
``TYPE_CHECKING`` block is for the type checker only and does not count)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "cerebras_paygo"
ADAPTERS = [ROOT / "langchain_cerebras_paygo", ROOT / "llama_index_cerebras"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(path: Path) -> set[str]:
    """Modules ``path`` imports at run time, as absolute names.

    ``from x import y`` gives ``x.y`` when that is a module, else ``x``; as in import-linter, the
    parent package a submodule import runs first is not an edge (else every package whose
    ``__init__`` re-exports its submodules would be a cycle)."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if _is_module(target) else base)
    return found


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def core_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in CORE.rglob("*.py") if "emulator" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {target for target in imports_of(path) if target in modules and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_core_import_graph_has_no_cycle() -> None:
    graph = core_graph()
    assert len(graph) > 30
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


IO_MODULES = {"httpx", "httpx_sse", "anyio", "asyncio", "socket", "ssl", "time", "threading", "redis", "select"}


@pytest.mark.parametrize("name", ["_flow", "_lease", "_steps"])
def test_the_flow_imports_no_io(name: str) -> None:
    imported = imports_of(CORE / f"{name}.py")
    io = {module for module in imported if module.split(".")[0] in IO_MODULES}
    assert not io, f"{name} imports {sorted(io)}"
    shells = {
        m for m in imported if m.startswith(("cerebras_paygo._async", "cerebras_paygo._sync", "cerebras_paygo._http"))
    }
    assert not shells, f"{name} imports the shells or the transport: {sorted(shells)}"
    assert "cerebras_paygo._client" not in imported, "no import points back up to the client"


def test_the_shells_do_not_import_the_client() -> None:
    for shell in ("_async/drive.py", "_sync/drive.py"):
        assert not {m for m in imports_of(CORE / shell) if m.startswith("cerebras_paygo._client")}


# What an adapter may use of the core: the public names, configuration and wire translation. The
# decisions (limiter, budget, retries, payment circuit, the flow) stay out of reach.
ADAPTER_MAY_IMPORT = {
    "cerebras_paygo",
    "cerebras_paygo.errors",
    "cerebras_paygo._adapters",
    "cerebras_paygo._options",
    "cerebras_paygo._wire",
    "cerebras_paygo._structured",
    "cerebras_paygo._tools",
    "cerebras_paygo._streaming",
    "cerebras_paygo._catalog",
    "cerebras_paygo._settings",
    "cerebras_paygo._version",
}
DECISION_CALLS = {"acquire", "aacquire", "settle", "asettle", "release", "arelease", "hold", "reserve", "next_action"}


def adapter_files() -> list[Path]:
    return [p for package in ADAPTERS for p in package.rglob("*.py")]


@pytest.mark.parametrize("path", adapter_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_adapter_files_hold_only_framework_translation(path: Path) -> None:
    core = {m for m in imports_of(path) if m.startswith("cerebras_paygo")}
    modules = {
        m for m in core if (m.count(".") <= 1 and not m.startswith("cerebras_paygo.")) or m in ADAPTER_MAY_IMPORT
    }
    reached = {m.rsplit(".", 1)[0] if m.rsplit(".", 1)[0] in ADAPTER_MAY_IMPORT else m for m in core}
    forbidden = {m for m in reached if m not in ADAPTER_MAY_IMPORT and m.split(".")[1].startswith("_")}
    assert not forbidden, f"{path.name} reaches into the core's decisions: {sorted(forbidden)}"
    assert modules or not core
    tree = ast.parse(path.read_text())
    calls = {
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    assert not calls & DECISION_CALLS, f"{path.name} calls {sorted(calls & DECISION_CALLS)}"
    assert "ChatCompletionRequest" not in calls, f"{path.name} assembles requests itself (use build_request)"
