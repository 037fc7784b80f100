"""Output options of every command: checked before the work, so no run ends in a failed write."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from harpagon.cli import app as cli

runner = CliRunner()


def _fail_if_called(*args, **kwargs):
    raise AssertionError("the command started its work despite an unwritable output path")


@pytest.fixture
def no_work(monkeypatch):
    """Make the work of compare, bench and demo fail the test if it starts."""
    import harpagon.evaluation.runner as runner_module
    import harpagon.serving.demo as demo_module
    import harpagon.serving.loadgen as loadgen_module

    monkeypatch.setattr(runner_module, "compare_suite", _fail_if_called)
    monkeypatch.setattr(loadgen_module, "run_bench", _fail_if_called)
    monkeypatch.setattr(demo_module, "run_demo", _fail_if_called)


def _targets(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    return {
        "directory": (tmp_path, "(it is a directory)"),
        "missing folder": (
            tmp_path / "missing" / "out.json", f"(folder {tmp_path / 'missing'} does not exist)"
        ),
    }


def _assert_rejected(result, path: Path, reason: str, option: str) -> None:
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"cannot write {path} {reason}; choose a writable path for {option}" in text


COMMANDS = [
    (["compare", "--simulate-s", "0", "--no-progress"], "--json"),
    (["compare", "--simulate-s", "0", "--no-progress"], "--markdown"),
    (["compare", "--simulate-s", "0", "--no-progress"], "--plot"),
    (["bench", "--url", "http://127.0.0.1:9", "--rate", "5", "--duration", "1"], "--json"),
    (["demo", "--duration", "1"], "--json"),
]


@pytest.mark.parametrize("target", ["directory", "missing folder"])
@pytest.mark.parametrize(("command", "option"), COMMANDS)
def test_output_checked_before_work(no_work, tmp_path, command, option, target):
    path, reason = _targets(tmp_path)[target]
    result = runner.invoke(cli, [*command, option, str(path)])
    _assert_rejected(result, path, reason, option)
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("target", ["directory", "missing folder"])
def test_profile_output_checked_before_import(tmp_path, target):
    path, reason = _targets(tmp_path)[target]
    csv_path = tmp_path / "perf.csv"
    csv_path.write_text("Concurrency,Inferences/Second,Avg latency,p99 latency\n1,50.0,20000,25000\n")
    result = runner.invoke(
        cli,
        ["profile", "--perf-analyzer", str(csv_path), "--model-name", "resnet", "--hardware", "t4",
         "--batch-size", "8", "-o", str(path)],
    )
    _assert_rejected(result, path, reason, "-o")
    assert not (tmp_path / "missing").exists()


def test_bench_help_lists_mmpp():
    result = runner.invoke(cli, ["bench", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "uniform, poisson, mmpp" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("option", "message"),
    [("--rate", "--rate must be a finite number of req/s, got inf"),
     ("--duration", "--duration must be a finite number of s, got inf")],
)
def test_demo_rejects_infinite_option(no_work, option, message):
    result = runner.invoke(cli, ["demo", option, "inf"])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_compare_table_not_cut():
    # CliRunner's output is not a terminal, for which rich would assume 80 columns.
    result = runner.invoke(
        cli, ["compare", "--policies", "harpagon,harpagon-nodummy", "--simulate-s", "0",
              "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert "│ harpagon-nodummy │" in result.output
    assert "cost ratio med" in result.output
    assert "…" not in result.output
