"""Importing an adapter leaves the core unimported; every way of making or describing an instance
completes the model first (each case runs in a fresh interpreter, where nothing is built yet)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

ADAPTERS = {
    "langchain": ("from langchain_cerebras_paygo import ChatCerebras as Model", "ChatCerebras"),
    "llama-index": ("from llama_index_cerebras import Cerebras as Model", "Cerebras"),
}
# What the first instance pulls in; none of it is needed to import the adapter.
CORE = ("httpx", "cerebras_paygo._client", "cerebras_paygo._flow", "cerebras_paygo._wire", "cerebras_paygo._catalog")


def run(adapter: str, body: str) -> str:
    """Run ``body`` after importing the adapter as ``Model`` in a fresh interpreter; its stdout."""
    script = ADAPTERS[adapter][0] + "\n" + textwrap.dedent(body)
    env = {"PATH": "/usr/bin:/bin", "CEREBRAS_API_KEY": "csk-lazy-test"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(params=list(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_importing_an_adapter_imports_none_of_the_core(adapter: str) -> None:
    out = run(adapter, f"import sys\nprint(sorted(m for m in {CORE!r} if m in sys.modules))")
    assert out == "[]"


def test_the_first_instance_validates_as_before(adapter: str) -> None:
    out = run(
        adapter,
        """
        import sys
        import httpx
        from cerebras_paygo.errors import ConfigurationError
        try:
            Model(http_client=3)
        except ConfigurationError as exc:
            print("refused", "http_client" in str(exc))
        model = Model(http_client=httpx.Client(), max_tokens=7)
        print(type(model.http_client).__name__, model.max_tokens, "cerebras_paygo._client" in sys.modules)
        """,
    )
    assert out.splitlines() == ["refused True", "Client 7 True"]


def test_class_level_entry_points_complete_the_model(adapter: str) -> None:
    out = run(
        adapter,
        """
        print(Model.model_validate({"max_tokens": 9}).max_tokens)
        print(Model.model_validate_json('{"max_tokens": 8}').max_tokens)
        print(Model.model_construct(max_tokens=5).model_dump()["max_tokens"])
        """,
    )
    assert out.splitlines() == ["9", "8", "5"]


def test_a_subclass_and_a_model_holding_one_work_before_any_instance(adapter: str) -> None:
    out = run(
        adapter,
        """
        from pydantic import BaseModel

        class Mine(Model):
            note: str = "mine"

        class Config(BaseModel):
            model_config = {"arbitrary_types_allowed": True}
            llm: Model

        mine = Mine(max_tokens=3)
        print(mine.note, mine.max_tokens)
        print(type(Config(llm=mine).llm).__name__)
        """,
    )
    assert out.splitlines() == ["mine 3", "Mine"]


def test_an_instance_unpickled_in_a_fresh_process_works(adapter: str) -> None:
    import pickle

    import httpx  # noqa: F401  (this process has the core: the pickle is made here)

    from langchain_cerebras_paygo import ChatCerebras
    from llama_index_cerebras import Cerebras

    made = ChatCerebras(max_tokens=11) if adapter == "langchain" else Cerebras(max_tokens=11)
    blob = pickle.dumps(made)
    out = run(
        adapter,
        f"""
        import pickle
        model = pickle.loads({blob!r})
        print(model.max_tokens, model.model_dump()["max_tokens"], type(model.cerebras_client).__name__)
        """,
    )
    assert out == "11 11 CerebrasClient"
