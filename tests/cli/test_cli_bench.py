"""``cerebras-paygo bench`` runs the suites of the source checkout and renders their tables."""

from __future__ import annotations

import json

import pytest

from cerebras_paygo._cli.bench import SUITES, benchmarks_dir
from cerebras_paygo._cli.main import main
from tests.cli._output import assert_fits, row


def test_every_suite_names_a_script_of_the_checkout() -> None:
    folder = benchmarks_dir()
    assert folder is not None
    for suite in SUITES.values():
        assert (folder / suite.script).exists()


def test_list_names_the_suites(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert_fits(out)
    for name, suite in SUITES.items():
        assert row(out.splitlines(), name).split()[1] == suite.script


def test_list_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--list", "--json"]) == 0
    suites = json.loads(capsys.readouterr().out)["suites"]
    assert [s["name"] for s in suites] == list(SUITES)
    headers = next(s for s in suites if s["name"] == "headers")
    assert headers["script"] == "headers.py" and headers["in_quick"] is True and "--no-write" in headers["quick_args"]


def test_a_quick_suite_runs_and_its_table_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--suite", "headers"]) == 0
    out = capsys.readouterr().out
    assert "ResponseMeta" in out and "µs" in out
    assert main(["bench", "--quick", "--suite", "headers", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    (run,) = document["runs"]
    assert run["suite"] == "headers" and run["exit_code"] == 0 and document["failed"] == 0
    assert "ResponseMeta" in run["markdown"] and "headers.py --runs 3" in run["command"]
