"""``cerebras-paygo bench`` runs the suites of the source checkout and renders their tables."""

from __future__ import annotations

import pytest

from cerebras_paygo._cli.bench import SUITES, benchmarks_dir
from cerebras_paygo._cli.main import main


def test_every_suite_names_a_script_of_the_checkout() -> None:
    folder = benchmarks_dir()
    assert folder is not None
    for suite in SUITES.values():
        assert (folder / suite.script).exists()


def test_list_names_the_suites(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SUITES)


def test_a_quick_suite_runs_and_its_table_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--suite", "headers"]) == 0
    out = capsys.readouterr().out
    assert "ResponseMeta" in out and "µs" in out
