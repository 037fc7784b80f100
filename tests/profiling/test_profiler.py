"""Tests of the batch profiler, the profile writer and the ``harpagon profile`` command."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from harpagon.cli import app
from harpagon.errors import ConfigError
from harpagon.model.loading import load_profiles
from harpagon.profiling import profiler
from harpagon.profiling.profiler import (
    MAX_BATCH_INPUT_BYTES,
    BatchTiming,
    check_input_size,
    input_bytes,
    measure_batches,
    parse_batch_sizes,
    parse_input_shapes,
    random_inputs,
    write_profile,
)
from harpagon.serving.ocr import model_path
from harpagon.serving.onnx_runner import TensorSpec


class FakeClock:
    """A perf_counter replacement that advances only when a fake batch runs."""

    def __init__(self):
        self.now_s = 0.0
        self.calls = []

    def __call__(self):
        return self.now_s

    def run(self, batch_size, cost_ms):
        self.calls.append(batch_size)
        self.now_s += cost_ms / 1000.0


def test_measure_batches_counts_only_repeats(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(profiler, "perf_counter", clock)
    costs_ms = iter([999.0, 999.0, 10.0, 12.0, 14.0, 999.0, 999.0, 30.0, 30.0, 30.0])

    timings = measure_batches(
        lambda b: clock.run(b, next(costs_ms)), [1, 4], warmup=2, repeats=3, progress=False
    )

    assert clock.calls == [1] * 5 + [4] * 5
    assert timings[1].mean_ms == pytest.approx(12.0)
    assert timings[1].p99_ms == pytest.approx(np.percentile([10.0, 12.0, 14.0], 99))
    assert timings[1].repeats == 3
    assert timings[4].mean_ms == pytest.approx(30.0)
    assert timings[4].p99_ms == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"repeats": 0}, "repeats must be >= 1, got 0"),
        ({"warmup": -1}, "warmup must be >= 0, got -1"),
        ({"batch_sizes": [0]}, "batch sizes must be >= 1, got 0"),
    ],
)
def test_measure_batches_rejects_bad_settings(kwargs, message):
    arguments = {"batch_sizes": [1], "warmup": 0, "repeats": 1, **kwargs}
    with pytest.raises(ConfigError, match=message):
        measure_batches(lambda b: None, progress=False, **arguments)


def test_parse_batch_sizes_sorts_and_deduplicates():
    assert parse_batch_sizes("8, 1,2,2,4") == [1, 2, 4, 8]


@pytest.mark.parametrize(("text", "message"), [("1,x", "'x' is not an integer"), ("0,1", ">= 1, got 0"), (",", "no batch sizes")])
def test_parse_batch_sizes_rejects_bad_text(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_batch_sizes(text)


DYNAMIC = TensorSpec("x", (None, 3, "height", "width"), "tensor(float)")
STATIC = TensorSpec("mask", ("batch", 16), "tensor(int64)")


def test_input_shapes_from_declaration_and_option():
    shapes = parse_input_shapes(["x:3,32,64"], [DYNAMIC, STATIC])

    assert shapes == {"x": (3, 32, 64), "mask": (16,)}


def test_input_shape_without_name_for_single_input():
    assert parse_input_shapes(["3,48,192"], [DYNAMIC]) == {"x": (3, 48, 192)}


@pytest.mark.parametrize(
    ("specs", "inputs", "message"),
    [
        ([], [DYNAMIC], "input 'x' has dynamic dimensions"),
        (["3,32,64"], [DYNAMIC, STATIC], "must name the input"),
        (["y:3,32,64"], [DYNAMIC], "unknown input 'y'; inputs: x"),
        (["x:3,32"], [DYNAMIC], "has 2 dimensions, but the model declares 3"),
        (["x:3,a,64"], [DYNAMIC], "is not a list of integers"),
        (["x:3,0,64"], [DYNAMIC], "has a dimension < 1"),
    ],
)
def test_input_shapes_rejected(specs, inputs, message):
    with pytest.raises(ConfigError, match=message):
        parse_input_shapes(specs, inputs)


def test_random_inputs_match_shapes_and_types():
    feed = random_inputs([DYNAMIC, STATIC], {"x": (3, 8, 8), "mask": (16,)}, batch_size=4)

    assert feed["x"].shape == (4, 3, 8, 8)
    assert feed["x"].dtype == np.float32
    assert feed["mask"].shape == (4, 16)
    assert feed["mask"].dtype == np.int64


def test_random_inputs_reject_strings():
    spec = TensorSpec("words", (None,), "tensor(string)")
    with pytest.raises(ConfigError, match="type tensor\\(string\\), which the profiler cannot fill"):
        random_inputs([spec], {"words": ()}, batch_size=1)


def test_input_bytes_counts_every_input():
    shapes = {"x": (3, 8, 8), "mask": (16,)}

    assert input_bytes([DYNAMIC, STATIC], shapes, batch_size=4) == 4 * (3 * 8 * 8 * 4 + 16 * 8)


def test_input_size_limit():
    shapes = {"x": (3, 48, 192)}
    largest = MAX_BATCH_INPUT_BYTES // (3 * 48 * 192 * 4)
    check_input_size([DYNAMIC], shapes, [1, largest])

    with pytest.raises(
        ConfigError,
        match=r"batch size 100000 needs 11,059,200,000 bytes \(10\.3 GiB\) of random input for "
        r"item shapes x \[3, 48, 192\], more than the limit of 2 GiB per batch; use smaller "
        r"--batch-sizes or a smaller --input-shape",
    ):
        check_input_size([DYNAMIC], shapes, [1, 100000])


def test_measure_batches_prepares_each_size_untimed(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(profiler, "perf_counter", clock)
    prepared = []

    def prepare(batch_size):
        prepared.append((batch_size, len(clock.calls)))
        clock.now_s += 5.0  # a slow preparation must not reach the timings

    timings = measure_batches(
        lambda b: clock.run(b, 10.0), [1, 4], warmup=0, repeats=2, progress=False, prepare=prepare
    )

    assert prepared == [(1, 0), (4, 2)]
    assert timings[1].mean_ms == pytest.approx(10.0)
    assert timings[4].mean_ms == pytest.approx(10.0)


def timings(*pairs):
    return {b: BatchTiming(b, mean, mean * 1.5, 5) for b, mean in pairs}


def test_write_profile_loads_back(tmp_path):
    path = tmp_path / "det.yaml"

    write_profile(path, "det", "cpu-1t", timings((1, 10.0), (4, 30.0)), "unit test")

    profile = load_profiles(path)["det"]
    document = yaml.safe_load(path.read_text())
    assert profile.batch_latency_ms("cpu-1t", 4) == 30.0
    assert document["p99_latency_ms"] == {"cpu-1t": {1: 15.0, 4: 45.0}}
    assert document["source"] == "cpu-1t: unit test"


def test_write_profile_merges_hardware(tmp_path):
    path = tmp_path / "det.yaml"
    write_profile(path, "det", "cpu-1t", timings((1, 10.0)), "first")
    write_profile(path, "det", "cpu-2t", timings((1, 6.0)), "second")
    write_profile(path, "det", "cpu-1t", timings((1, 11.0), (2, 19.0)), "third")

    profile = load_profiles(path)["det"]
    document = yaml.safe_load(path.read_text())
    assert dict(profile.latency_ms) == {"cpu-1t": {1: 11.0, 2: 19.0}, "cpu-2t": {1: 6.0}}
    assert document["source"].splitlines() == ["cpu-1t: third", "cpu-2t: second"]


def test_write_profile_rejects_other_model(tmp_path):
    path = tmp_path / "det.yaml"
    write_profile(path, "det", "cpu-1t", timings((1, 10.0)), "first")

    with pytest.raises(ConfigError, match="contains a profile of model 'det', not 'rec'"):
        write_profile(path, "rec", "cpu-1t", timings((1, 10.0)), "second")


def test_write_profile_rejects_non_profile(tmp_path):
    path = tmp_path / "notes.yaml"
    path.write_text("title: notes\n")

    with pytest.raises(ConfigError, match="is not a profile"):
        write_profile(path, "det", "cpu-1t", timings((1, 10.0)), "first")


# --- the command ---------------------------------------------------------------------------

runner = CliRunner()


def invoke(arguments):
    return runner.invoke(app, arguments)


def test_cli_imports_perf_analyzer_csv(tmp_path):
    csv_path = tmp_path / "perf.csv"
    csv_path.write_text("Concurrency,Inferences/Second,Avg latency,p99 latency\n1,50.0,20000,25000\n")
    output = tmp_path / "resnet.yaml"

    result = invoke(
        ["profile", "--perf-analyzer", str(csv_path), "--model-name", "resnet", "--hardware", "t4",
         "--batch-size", "8", "-o", str(output)],
    )

    assert result.exit_code == 0, result.output
    profile = load_profiles(output)["resnet"]
    assert profile.batch_latency_ms("t4", 8) == 20.0


def test_cli_perf_analyzer_needs_batch_size(tmp_path):
    result = invoke(
        ["profile", "--perf-analyzer", str(tmp_path / "x.csv"), "--model-name", "m", "--hardware", "t4"]
    )

    assert result.exit_code == 2
    assert "needs --model-name and --batch-size" in result.output


def test_cli_reports_dynamic_input(tmp_path):
    result = invoke(["profile", str(model_path("cls")), "--hardware", "cpu-1t", "--no-progress"])

    assert result.exit_code == 2
    assert "dynamic dimensions" in result.output


def test_cli_rejects_oversized_batch(tmp_path):
    result = invoke(
        ["profile", str(model_path("cls")), "--hardware", "cpu-1t", "--batch-sizes", "1,100000",
         "--input-shape", "3,48,192", "--no-progress"],
    )

    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "batch size 100000 needs 11,059,200,000 bytes (10.3 GiB)" in text
    assert "use smaller --batch-sizes or a smaller --input-shape" in text


@pytest.mark.slow
def test_cli_profiles_onnx_model(tmp_path):
    output = tmp_path / "cls.yaml"

    result = invoke(
        ["profile", str(model_path("cls")), "--hardware", "cpu-1t", "--batch-sizes", "1,2",
         "--warmup", "1", "--repeats", "2", "--input-shape", "3,48,192", "--no-progress",
         "--model-name", "ocr_cls", "-o", str(output)],
    )

    assert result.exit_code == 0, result.output
    document = yaml.safe_load(output.read_text())
    assert set(document["latency_ms"]["cpu-1t"]) == {1, 2}
    assert set(document["p99_latency_ms"]["cpu-1t"]) == {1, 2}
    assert "1 intra-op thread(s)" in document["source"]
    assert load_profiles(output)["ocr_cls"].batch_latency_ms("cpu-1t", 2) > 0
