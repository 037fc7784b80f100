"""Tests of the input readers: shipped data, YAML and CSV errors, and the public profile table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from harpagon.errors import ConfigError
from harpagon.model import (
    load_application,
    load_hardware,
    load_profiles,
    resolve_application,
    shipped_app_names,
    shipped_data_path,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLIC_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
PUBLIC_PROFILE_CSV = PUBLIC_DATA_DIR / "profiles" / "public_gpu_profiles.csv"

# Sample applications built on the shipped GPU profiles. Other shipped applications, such
# as the OCR demo, use profiles measured on the local machine.
GPU_APPS = ["traffic", "store_reid", "incident_qa", "campus_safety"]

VALID_APP = """\
name: demo
rate: 100
slo_ms: 200
modules:
  - {name: detector, profile: ssd}
  - {name: classifier, profile: resnet, rate_factor: 2.5}
edges:
  - [detector, classifier]
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# Shipped data


def test_shipped_hardware_prices_per_gpu():
    catalog = load_hardware()

    assert catalog.names() == ["t4", "l4", "a10g", "v100", "a100", "a100_80gb"]
    assert catalog["t4"].price_per_hour == 0.526
    assert catalog["v100"].price_per_hour == 3.06
    # p4d.24xlarge and p4de.24xlarge carry 8 GPUs each.
    assert catalog["a100"].price_per_hour == pytest.approx(32.7726 / 8)
    assert catalog["a100_80gb"].price_per_hour == pytest.approx(40.96575 / 8)
    for hardware in catalog:
        assert "on-demand" in hardware.description, hardware.name
        assert hardware.source.startswith("skypilot-org/skypilot-catalog"), hardware.name


def test_shipped_profiles_use_catalog_hardware():
    catalog = load_hardware()
    profiles = load_profiles()

    assert {
        "resnet50_v1.5",
        "ssd300_v1.1_resnet50",
        "bert_large_squad_seq384",
        "bert_dist4l_squad_seq384",
        "bert_dist6l_squad_seq384",
    } <= {profile.model for profile in profiles}
    for profile in profiles:
        assert profile.source, profile.model
        for hardware in profile.hardware_names():
            assert hardware in catalog, (profile.model, hardware)


def test_shipped_profiles_keep_reported_values():
    profiles = load_profiles()

    # ResNet-50 on T4, Triton ONNX Runtime + TensorRT FP16, mean latency at batch 1 and 128.
    assert profiles["resnet50_v1.5"].batch_latency_ms("t4", 1) == 3.003
    assert profiles["resnet50_v1.5"].batch_latency_ms("t4", 128) == 100.155
    # V100 32 GB measurements are listed as v100.
    assert profiles["resnet50_v1.5"].batch_latency_ms("v100", 32) == 15.664
    # BERT-large, Triton TensorRT plan FP16.
    assert profiles["bert_large_squad_seq384"].batch_latency_ms("a100_80gb", 16) == 29.4
    # SSD300, mixed precision, derived from 1000 * batch / throughput.
    assert profiles["ssd300_v1.1_resnet50"].batch_latency_ms("v100", 8) == 17.887088


def test_shipped_profiles_grow_with_batch_size():
    for profile in load_profiles():
        for hardware, by_size in profile.latency_ms.items():
            sizes = sorted(by_size)
            for small, large in zip(sizes, sizes[1:]):
                assert by_size[small] < by_size[large], (profile.model, hardware, small, large)


def test_every_shipped_app_loads():
    names = shipped_app_names()

    assert set(GPU_APPS) <= set(names)
    for name in names:
        assert resolve_application(name).name == name


def test_gpu_apps_are_feasible():
    catalog = load_hardware()
    profiles = load_profiles()

    for name in GPU_APPS:
        app = resolve_application(name)
        assert app.name == name
        fastest_ms = {}
        for module in app.modules:
            profile = profiles[module.profile]
            usable = [h for h in profile.hardware_names() if h in catalog]
            assert usable, (name, module.name)
            fastest_ms[module.name] = module.overhead_ms + min(
                profile.batch_latency_ms(h, min(profile.latency_ms[h])) for h in usable
            )
        path_ms, _ = app.critical_path(fastest_ms)
        # Room for the planner to choose larger batches, not just a feasible SLO.
        assert app.slo_ms > 5 * path_ms, (name, app.slo_ms, path_ms)


def test_traffic_app_is_detector_fork():
    app = resolve_application("traffic")

    assert app.module("detector").profile == "ssd300_v1.1_resnet50"
    assert app.module("car_classifier").profile == "resnet50_v1.5"
    assert app.module("person_classifier").profile == "resnet50_v1.5"
    assert sorted(app.successors("detector")) == ["car_classifier", "person_classifier"]
    assert app.module_rate("car_classifier") == pytest.approx(app.rate * 2.5)


def test_shipped_apps_cover_join_and_chain():
    join = resolve_application("store_reid")
    chain = resolve_application("incident_qa")

    assert sorted(join.predecessors("frame_qa")) == ["attributes", "reid_embedding"]
    assert [list(path) for path in chain.paths()] == [
        ["activity_filter", "scene_classifier", "incident_reader"]
    ]


def test_shipped_data_matches_generator(monkeypatch):
    if not PUBLIC_PROFILE_CSV.exists():
        pytest.skip(f"public measurement tables not found under {PUBLIC_DATA_DIR}")
    spec = importlib.util.spec_from_file_location(
        "build_shipped_data", REPO_ROOT / "tools" / "build_shipped_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the file executes.
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)

    status = module.main(
        ["--check", "--data-dir", str(PUBLIC_DATA_DIR), "--output-dir", str(shipped_data_path())]
    )

    assert status == 0, "shipped YAML differs from tools/build_shipped_data.py output"


def test_resolve_application_unknown_name():
    with pytest.raises(ConfigError, match=r"no_such_app: no such application file.*shipped: .*traffic"):
        resolve_application("no_such_app")


# YAML errors


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = _write(tmp_path, "broken.yaml", "name: demo\nrate: [100\n")

    with pytest.raises(ConfigError, match=r"broken\.yaml: malformed YAML at line \d+"):
        load_application(path)


def test_missing_field_names_file_and_field(tmp_path):
    path = _write(tmp_path, "gpus.yaml", "hardware:\n  - name: t4\n")

    with pytest.raises(ConfigError, match=r"gpus\.yaml: field 'hardware\.0\.price_per_hour': Field required"):
        load_hardware(path)


def test_unknown_field_names_file_and_field(tmp_path):
    path = _write(tmp_path, "app.yaml", VALID_APP + "deadline_ms: 50\n")

    with pytest.raises(ConfigError, match=r"app\.yaml: field 'deadline_ms': Extra inputs are not permitted"):
        load_application(path)


def test_unknown_module_field_rejected(tmp_path):
    text = VALID_APP.replace("rate_factor: 2.5", "fanout: 2.5")
    path = _write(tmp_path, "app.yaml", text)

    with pytest.raises(ConfigError, match=r"app\.yaml: field 'modules\.1\.fanout'"):
        load_application(path)


def test_negative_rate_rejected(tmp_path):
    path = _write(tmp_path, "app.yaml", VALID_APP.replace("rate: 100", "rate: -5"))

    with pytest.raises(ConfigError, match=r"app\.yaml: field 'rate': .*greater than 0 \(got -5\)"):
        load_application(path)


def test_zero_latency_rejected(tmp_path):
    path = _write(tmp_path, "resnet.yaml", "model: resnet\nlatency_ms:\n  t4: {1: 0, 8: 9.0}\n")

    with pytest.raises(ConfigError, match=r"resnet\.yaml: field 'latency_ms': .*latency must be > 0 ms, got 0"):
        load_profiles(path)


def test_zero_batch_size_rejected(tmp_path):
    path = _write(tmp_path, "resnet.yaml", "model: resnet\nlatency_ms:\n  t4: {0: 1.0}\n")

    with pytest.raises(ConfigError, match=r"resnet\.yaml: field 'latency_ms': .*batch size must be >= 1, got 0"):
        load_profiles(path)


def test_yaml_list_instead_of_mapping(tmp_path):
    path = _write(tmp_path, "app.yaml", "- name: demo\n")

    with pytest.raises(ConfigError, match=r"app\.yaml: expected a YAML mapping in this application file, got list"):
        load_application(path)


def test_missing_file_named(tmp_path):
    with pytest.raises(ConfigError, match=r"absent\.yaml: file not found"):
        load_hardware(tmp_path / "absent.yaml")


def test_duplicate_model_across_files(tmp_path):
    _write(tmp_path, "a.yaml", "model: resnet\nlatency_ms:\n  t4: {1: 3.0}\n")
    _write(tmp_path, "b.yaml", "model: resnet\nlatency_ms:\n  v100: {1: 2.8}\n")

    with pytest.raises(ConfigError, match=r"b\.yaml: model 'resnet' is already defined in .*a\.yaml"):
        load_profiles(tmp_path)


def test_duplicate_hardware_in_catalog(tmp_path):
    text = "hardware:\n  - {name: t4, price_per_hour: 0.5}\n  - {name: t4, price_per_hour: 0.6}\n"
    path = _write(tmp_path, "gpus.yaml", text)

    with pytest.raises(ConfigError, match=r"gpus\.yaml: hardware type 't4' is listed twice"):
        load_hardware(path)


def test_empty_profile_directory(tmp_path):
    with pytest.raises(ConfigError, match=r"holds no profile YAML files"):
        load_profiles(tmp_path)


def test_profile_directory_reads_every_file(tmp_path):
    _write(tmp_path, "resnet.yaml", "model: resnet\nlatency_ms:\n  t4: {1: 3.0, 8: 9.0}\n")
    _write(tmp_path, "ssd.yml", "model: ssd\nlatency_ms:\n  v100: {1: 12.0}\n")

    profiles = load_profiles(tmp_path)

    assert sorted(p.model for p in profiles) == ["resnet", "ssd"]
    assert profiles["resnet"].batch_latency_ms("t4", 8) == 9.0


def test_application_edge_to_unknown_module(tmp_path):
    path = _write(tmp_path, "app.yaml", VALID_APP + "  - [classifier, tracker]\n")

    with pytest.raises(ConfigError, match=r"app\.yaml: edge \[classifier, tracker\] names unknown module 'tracker'"):
        load_application(path)


# CSV profiles


def test_csv_profiles_load(tmp_path):
    text = (
        "model,hardware,batch_size,latency_ms,statistic\n"
        "resnet,t4,1,3.0,avg\n"
        "resnet,t4,1,3.2,p99\n"
        "resnet,t4,8,9.0,avg\n"
        "resnet,v100,1,2.8,avg\n"
    )
    path = _write(tmp_path, "profiles.csv", text)

    profiles = load_profiles(path)

    assert profiles["resnet"].latency_ms == {"t4": {1: 3.0, 8: 9.0}, "v100": {1: 2.8}}


def test_csv_missing_column(tmp_path):
    path = _write(tmp_path, "profiles.csv", "model,hardware,batch_size\nresnet,t4,1\n")

    with pytest.raises(ConfigError, match=r"profiles\.csv: profile CSV lacks column\(s\) latency_ms"):
        load_profiles(path)


def test_csv_bad_number(tmp_path):
    path = _write(tmp_path, "profiles.csv", "model,hardware,batch_size,latency_ms\nresnet,t4,1,fast\n")

    with pytest.raises(ConfigError, match=r"profiles\.csv: line 2: .*latency_ms a number, got '1' and 'fast'"):
        load_profiles(path)


def test_csv_zero_batch_size(tmp_path):
    path = _write(tmp_path, "profiles.csv", "model,hardware,batch_size,latency_ms\nresnet,t4,0,3.0\n")

    with pytest.raises(ConfigError, match=r"profiles\.csv: line 2: batch_size must be >= 1"):
        load_profiles(path)


def test_csv_duplicate_row_rejected(tmp_path):
    text = "model,hardware,batch_size,latency_ms\nresnet,t4,1,3.0\nresnet,t4,1,3.5\n"
    path = _write(tmp_path, "profiles.csv", text)

    with pytest.raises(ConfigError, match=r"profiles\.csv: line 3: duplicate row .*first on line 2"):
        load_profiles(path)


def test_csv_series_split_by_framework(tmp_path):
    """Two series of one model once overwrote each other: the last row read won."""
    text = (
        "model,hardware,batch_size,latency_ms,statistic,framework,precision\n"
        "bert,t4,1,24.9,avg,onnxruntime,fp16\n"
        "bert,t4,1,14.4,avg,tensorrt,fp16\n"
        "resnet,t4,1,3.0,avg,tensorrt,fp16\n"
    )
    path = _write(tmp_path, "profiles.csv", text)

    profiles = load_profiles(path)

    assert sorted(p.model for p in profiles) == [
        "bert:onnxruntime:fp16", "bert:tensorrt:fp16", "resnet",
    ]
    assert profiles["bert:onnxruntime:fp16"].batch_latency_ms("t4", 1) == 24.9
    assert profiles["bert:tensorrt:fp16"].batch_latency_ms("t4", 1) == 14.4


def test_csv_header_only(tmp_path):
    path = _write(tmp_path, "profiles.csv", "model,hardware,batch_size,latency_ms\n")

    with pytest.raises(ConfigError, match=r"profiles\.csv: profile CSV has no rows"):
        load_profiles(path)


def test_public_profile_table_loads():
    if not PUBLIC_PROFILE_CSV.exists():
        pytest.skip(f"{PUBLIC_PROFILE_CSV} not found")

    profiles = load_profiles(PUBLIC_PROFILE_CSV)

    # Single-series models keep their name; the p99 rows are skipped.
    assert profiles["resnet50_v1.5"].batch_latency_ms("t4", 1) == 3.003
    assert profiles["vgg16"].hardware_names() == ["titan_x_pascal"]
    # BERT-large has four Triton backends in the table, each its own profile.
    tensorrt = profiles["bert_large_squad_seq384:triton/tensorrt:fp16"]
    assert tensorrt.latency_ms["t4"] == {1: 14.4, 8: 114.5, 16: 218.8}
    torchscript = profiles["bert_large_squad_seq384:triton/pytorch-torchscript-trace:fp16"]
    assert torchscript.batch_latency_ms("t4", 1) == 19.9
    assert "bert_large_squad_seq384" not in profiles


# Profile statistics

P99_PROFILE = """\
model: det
latency_ms:
  cpu-1t: {1: 100.0, 2: 200.0}
  cpu-2t: {1: 60.0}
p99_latency_ms:
  cpu-1t: {1: 130.0}
"""


def test_yaml_p99_table_kept(tmp_path):
    path = _write(tmp_path, "det.yaml", P99_PROFILE)

    profile = load_profiles(path)["det"]

    assert profile.statistic == "mean"
    assert profile.latency_ms == {"cpu-1t": {1: 100.0, 2: 200.0}, "cpu-2t": {1: 60.0}}
    assert profile.p99_latency_ms == {"cpu-1t": {1: 130.0}}


def test_p99_statistic_falls_back_to_mean(tmp_path):
    path = _write(tmp_path, "det.yaml", P99_PROFILE)

    profile = load_profiles(path, statistic="p99")["det"]

    assert profile.statistic == "p99"
    assert profile.batch_latency_ms("cpu-1t", 1) == 130.0
    # No p99 was measured for these two, so they keep the mean.
    assert profile.batch_latency_ms("cpu-1t", 2) == 200.0
    assert profile.batch_latency_ms("cpu-2t", 1) == 60.0
    assert profile.p99_latency_ms == {"cpu-1t": {1: 130.0}}


def test_p99_statistic_without_p99_table(tmp_path):
    _write(tmp_path, "ssd.yaml", "model: ssd\nlatency_ms:\n  t4: {1: 5.0, 4: 12.0}\n")

    profiles = load_profiles(tmp_path, statistic="p99")

    assert profiles["ssd"].latency_ms == {"t4": {1: 5.0, 4: 12.0}}
    assert profiles["ssd"].p99_latency_ms is None


def test_unknown_statistic_rejected(tmp_path):
    path = _write(tmp_path, "det.yaml", P99_PROFILE)

    with pytest.raises(ConfigError, match=r"unknown profile statistic 'median'; use one of mean, p99"):
        load_profiles(path, statistic="median")


def test_p99_profile_cannot_return_to_mean(tmp_path):
    profile = load_profiles(_write(tmp_path, "det.yaml", P99_PROFILE), statistic="p99")["det"]

    assert profile.with_statistic("p99") is profile
    with pytest.raises(ConfigError, match=r"'det' already contains p99 latencies"):
        profile.with_statistic("mean")


def test_zero_p99_latency_rejected(tmp_path):
    text = P99_PROFILE.replace("{1: 130.0}", "{1: 0}")
    path = _write(tmp_path, "det.yaml", text)

    with pytest.raises(ConfigError, match=r"det\.yaml: field 'p99_latency_ms': .*latency must be > 0 ms"):
        load_profiles(path)


def test_csv_p99_rows_kept(tmp_path):
    text = (
        "model,hardware,batch_size,latency_ms,statistic\n"
        "resnet,t4,1,3.0,avg\n"
        "resnet,t4,1,3.2,p99\n"
        "resnet,t4,8,9.0,avg\n"
        "resnet,t4,8,8.5,p90\n"
    )
    path = _write(tmp_path, "profiles.csv", text)

    mean = load_profiles(path)["resnet"]
    p99 = load_profiles(path, statistic="p99")["resnet"]

    assert mean.p99_latency_ms == {"t4": {1: 3.2}}
    assert p99.latency_ms == {"t4": {1: 3.2, 8: 9.0}}


def test_csv_duplicate_p99_row_rejected(tmp_path):
    text = (
        "model,hardware,batch_size,latency_ms,statistic\n"
        "resnet,t4,1,3.0,avg\n"
        "resnet,t4,1,3.2,p99\n"
        "resnet,t4,1,3.3,p99\n"
    )
    path = _write(tmp_path, "profiles.csv", text)

    with pytest.raises(ConfigError, match=r"line 4: duplicate row .*\(p99, first on line 3\)"):
        load_profiles(path)
