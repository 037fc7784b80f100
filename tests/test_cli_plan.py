"""``harpagon plan`` through typer's CliRunner, on YAML files written by the tests."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from harpagon.cli import app as cli
from harpagon.model import HardwareCatalog, HardwareType, Profile, ProfileSet
from harpagon.model.loading import load_application, load_hardware, load_profiles
from harpagon.model.plan import load_plan
from harpagon.model.validate import validate_plan

runner = CliRunner()

APP_YAML = """\
name: small
rate: 450
slo_ms: 150
modules:
  - {name: det, profile: det, overhead_ms: 1}
  - {name: cls, profile: cls, overhead_ms: 0.5, rate_factor: 2}
edges:
  - [det, cls]
"""
HARDWARE_YAML = """\
hardware:
  - {name: big, price_per_hour: 1.0}
  - {name: small, price_per_hour: 0.8, available: 4}
"""
DET_YAML = """\
model: det
latency_ms:
  big: {1: 10.0, 16: 40.0}
  small: {1: 5.0}
"""
CLS_YAML = """\
model: cls
latency_ms:
  big: {1: 4.0, 8: 10.0}
  small: {1: 2.0, 2: 3.0}
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "det.yaml").write_text(DET_YAML)
    (profiles / "cls.yaml").write_text(CLS_YAML)
    app = tmp_path / "app.yaml"
    app.write_text(APP_YAML)
    hardware = tmp_path / "hardware.yaml"
    hardware.write_text(HARDWARE_YAML)
    return {"app": app, "profiles": profiles, "hardware": hardware, "dir": tmp_path}


def _plan(files: dict[str, Path], *extra: str):
    return runner.invoke(
        cli,
        ["plan", "--app", str(files["app"]), "--profiles", str(files["profiles"]),
         "--hardware", str(files["hardware"]), *extra],
    )


@pytest.mark.parametrize("policy", ["harpagon", "optimal"])
def test_plan_writes_valid_json(files, policy):
    output = files["dir"] / "plan.json"
    result = _plan(files, "--policy", policy, "-o", str(output))
    assert result.exit_code == 0, result.output
    assert "det (det): 450 req/s" in result.output
    assert "cls (cls): 900 req/s" in result.output
    assert "SLO 150 ms" in result.output
    assert "fluid lower bound" in result.output

    data = json.loads(output.read_text())
    assert {"app", "policy", "rate", "slo_ms", "cost_per_hour", "latency_ms", "planning_ms",
            "modules", "shared_machines", "lower_bound_cost_per_hour"} <= set(data)
    assert data["policy"] == policy
    assert data["shared_machines"] == []
    module = data["modules"][0]
    assert {"name", "profile", "rate", "budget_ms", "latency_ms", "cost_per_hour", "groups"} <= set(module)
    assert {"hardware", "batch_size", "workers", "rate", "dummy_rate", "dispatch", "latency_ms"} <= set(
        module["groups"][0]
    )

    plan = load_plan(output)
    app = load_application(files["app"])
    validate_plan(plan, app, load_profiles(files["profiles"]), load_hardware(files["hardware"]))


def test_plan_overrides_rate_and_slo(files):
    output = files["dir"] / "plan.json"
    result = _plan(files, "--rate", "200", "--headroom", "0.5", "--slo-ms", "300", "-o", str(output))
    assert result.exit_code == 0, result.output
    data = json.loads(output.read_text())
    assert data["rate"] == pytest.approx(300.0)
    assert data["slo_ms"] == pytest.approx(300.0)
    assert data["modules"][1]["rate"] == pytest.approx(600.0)


def test_plan_shipped_application_by_name():
    result = runner.invoke(cli, ["plan", "--app", "traffic"])
    assert result.exit_code == 0, result.output
    assert "harpagon plan for traffic" in result.output


def _assert_clean_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    for fragment in fragments:
        assert fragment in text


def test_plan_malformed_yaml(files):
    files["app"].write_text("name: small\nrate: [1, 2\n")
    _assert_clean_error(_plan(files), "malformed YAML")


def test_plan_unknown_profile(files):
    files["app"].write_text(APP_YAML.replace("profile: cls", "profile: resnet"))
    _assert_clean_error(_plan(files), "unknown profile 'resnet'")


def test_plan_cyclic_graph(files):
    files["app"].write_text(APP_YAML + "  - [cls, det]\n")
    _assert_clean_error(_plan(files), "the module graph has a cycle")


def test_plan_negative_rate(files):
    _assert_clean_error(_plan(files, "--rate", "-3"), "rate must be > 0 req/s, got -3")


def test_plan_infeasible_slo(files):
    _assert_clean_error(
        _plan(files, "--slo-ms", "4"), "below the fastest possible latency", "path det -> cls"
    )


def test_plan_unknown_policy(files):
    _assert_clean_error(_plan(files, "--policy", "cheapest"), "unknown policy 'cheapest'")


def test_plan_missing_app_file(files):
    result = runner.invoke(cli, ["plan", "--app", str(files["dir"] / "nope.yaml")])
    _assert_clean_error(result, "no such application file")


def _ocr_app(directory: Path) -> Path:
    path = directory / "ocr.yaml"
    path.write_text(textwrap.dedent("""\
        name: ocr
        rate: 4
        slo_ms: 1500
        modules:
          - {name: det, profile: ocr_det}
        """))
    return path


def test_plan_ocr_uses_local_profiles(tmp_path, monkeypatch):
    import harpagon.profiling.ocr as ocr

    profiles = ProfileSet({"ocr_det": Profile("ocr_det", {"cpu-1t": {1: 200.0, 2: 380.0}})})
    hardware = HardwareCatalog({"cpu-1t": HardwareType("cpu-1t", 0.05, 2)})
    calls = []

    def fake_profiles(*args, **kwargs):
        calls.append(args)
        return profiles, hardware

    monkeypatch.setattr(ocr, "ensure_local_profiles", fake_profiles)
    result = runner.invoke(cli, ["plan", "--app", str(_ocr_app(tmp_path))])
    assert result.exit_code == 0, result.output
    assert len(calls) == 1
    assert "cpu-1t" in result.output


def test_plan_ocr_without_profiler_asks_for_files(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "harpagon.profiling.ocr", None)
    result = runner.invoke(cli, ["plan", "--app", str(_ocr_app(tmp_path))])
    _assert_clean_error(result, "pass --profiles and --hardware")


def test_plan_json_round_trips(files):
    output = files["dir"] / "plan.json"
    assert _plan(files, "-o", str(output)).exit_code == 0
    data = json.loads(output.read_text())
    assert json.loads(load_plan(output).to_json()) == data


def test_plan_nexus_lists_shared_machines():
    result = runner.invoke(cli, ["plan", "--app", "campus_safety", "--policy", "nexus"])
    assert result.exit_code == 0, result.output
    assert "shared machines" in result.output


def test_plan_unwritable_output(files):
    missing = files["dir"] / "missing"
    result = _plan(files, "-o", str(missing / "plan.json"))
    _assert_clean_error(
        result, f"folder {missing} does not exist", "choose a writable path for -o"
    )
    assert not missing.exists()


def test_plan_output_is_directory(files):
    result = _plan(files, "-o", str(files["dir"]))
    _assert_clean_error(result, "(it is a directory)", "choose a writable path for -o")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rate", "inf"], "--rate must be a finite number of req/s, got inf"),
        (["--rate", "nan"], "--rate must be > 0 req/s, got nan"),
        (["--rate", "0"], "--rate must be > 0 req/s, got 0.0"),
        (["--slo-ms", "inf"], "--slo-ms must be a finite number of ms, got inf"),
        (["--slo-ms", "0"], "--slo-ms must be > 0 ms, got 0.0"),
        (["--headroom", "inf"], "--headroom must be a finite fraction >= 0"),
    ],
)
def test_plan_rejects_bad_override(files, extra, message):
    result = _plan(files, *extra)
    _assert_clean_error(result, message)
    assert "app.yaml" not in result.output


def test_plan_shipped_app_rate_inf():
    result = runner.invoke(cli, ["plan", "--app", "traffic", "--rate", "inf"])
    _assert_clean_error(result, "--rate must be a finite number of req/s, got inf")


def _catalog(directory: Path, *names: str) -> Path:
    shipped = load_hardware()
    path = directory / "catalog.yaml"
    entries = [{"name": name, "price_per_hour": shipped[name].price_per_hour} for name in names]
    path.write_text(yaml.safe_dump({"hardware": entries}))
    return path


def _plan_hardware(plan_path: Path) -> set[str]:
    plan = json.loads(plan_path.read_text())
    used = {group["hardware"] for module in plan["modules"] for group in module["groups"]}
    return used | {machine["hardware"] for machine in plan["shared_machines"]}


@pytest.mark.parametrize("policy", ["harpagon", "optimal", "nexus", "scrooge", "inferline"])
def test_plan_smaller_catalog_ignores_other_hardware(tmp_path, policy):
    # The traffic detector is profiled on v100 and a100_80gb only, its classifiers on t4 too.
    catalog = _catalog(tmp_path, "t4", "v100")
    output = tmp_path / "plan.json"
    result = runner.invoke(
        cli, ["plan", "--app", "traffic", "--hardware", str(catalog), "--policy", policy,
              "-o", str(output)],
    )
    assert result.exit_code == 0, result.output
    assert _plan_hardware(output) <= {"t4", "v100"}


def test_plan_only_t4_catalog_uses_only_t4(tmp_path):
    app_path = tmp_path / "classifiers.yaml"
    app_path.write_text(textwrap.dedent("""\
        name: classifiers
        rate: 1500
        slo_ms: 200
        modules:
          - {name: car_classifier, profile: resnet50_v1.5, overhead_ms: 1, rate_factor: 2.5}
          - {name: scene_reader, profile: bert_dist4l_squad_seq384, overhead_ms: 2}
        """))
    output = tmp_path / "plan.json"
    result = runner.invoke(
        cli, ["plan", "--app", str(app_path), "--hardware", str(_catalog(tmp_path, "t4")),
              "-o", str(output)],
    )
    assert result.exit_code == 0, result.output
    assert _plan_hardware(output) == {"t4"}


def test_plan_module_without_catalog_hardware(tmp_path):
    result = runner.invoke(
        cli, ["plan", "--app", "traffic", "--hardware", str(_catalog(tmp_path, "t4"))]
    )
    _assert_clean_error(
        result,
        "ssd300_v1.1_resnet50.yaml: module 'detector' has no hardware type left in the catalog",
        "lists hardware v100, a100_80gb",
        "offers only t4",
    )


@pytest.mark.parametrize("policy", ["scrooge", "inferline"])
def test_baseline_module_without_catalog_hardware(tmp_path, policy):
    catalog = _catalog(tmp_path, "t4")
    result = runner.invoke(
        cli, ["plan", "--app", "traffic", "--hardware", str(catalog), "--policy", policy]
    )
    _assert_clean_error(
        result,
        f"{policy}: module 'detector' (profile 'ssd300_v1.1_resnet50') is not profiled on any "
        "hardware type of the catalog",
        f"it lists v100, a100_80gb, and {catalog} offers only t4",
    )


def test_plan_help_names_ocr_defaults():
    result = runner.invoke(cli, ["plan", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    assert "for --app ocr, this machine's CPU profiles, measured on first use" in text
    assert "for --app ocr, this machine's CPU catalog" in text


def test_version_option():
    from harpagon import __version__

    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"harpagon {__version__}\n"


def test_plan_tables_keep_hardware_names():
    # CliRunner's output is not a terminal, for which rich would assume 80 columns and cut
    # the shared machines' table.
    result = runner.invoke(cli, ["plan", "--app", "traffic", "--policy", "nexus"])
    assert result.exit_code == 0, result.output
    assert "shared machines" in result.output
    assert "a100_80gb" in result.output
    assert "…" not in result.output


def test_plan_profiles_from_csv(files):
    csv = files["dir"] / "profiles.csv"
    rows = ["model,hardware,batch_size,latency_ms"]
    for model, text in (("det", DET_YAML), ("cls", CLS_YAML)):
        for hardware, by_size in yaml.safe_load(text)["latency_ms"].items():
            rows += [f"{model},{hardware},{size},{latency}" for size, latency in by_size.items()]
    csv.write_text("\n".join(rows) + "\n")
    output = files["dir"] / "plan.json"
    result = runner.invoke(
        cli,
        ["plan", "--app", str(files["app"]), "--profiles", str(csv),
         "--hardware", str(files["hardware"]), "-o", str(output)],
    )
    assert result.exit_code == 0, result.output
    from_csv = json.loads(output.read_text())["cost_per_hour"]
    assert _plan(files, "-o", str(output)).exit_code == 0
    assert json.loads(output.read_text())["cost_per_hour"] == pytest.approx(from_csv)
