"""Tests of the arrival processes and the trace reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harpagon.errors import ConfigError
from harpagon.simulation import (
    MAX_ARRIVALS,
    MmppParameters,
    check_arrival_count,
    make_arrivals,
    mmpp_arrivals,
    poisson_arrivals,
    read_trace,
    trace_arrivals,
    uniform_arrivals,
)

AZURE_TRACE = next(
    (
        path
        for path in (
            Path("/work/shared/data/traces/AzureLLMInferenceTrace_code.csv"),
            Path(__file__).resolve().parents[3] / "shared/data/traces/AzureLLMInferenceTrace_code.csv",
        )
        if path.exists()
    ),
    None,
)


def test_uniform_spacing():
    times = uniform_arrivals(250.0, 2.0)
    assert times.size == 500
    assert times[0] == 0.0
    assert np.allclose(np.diff(times), 4.0)


@pytest.mark.parametrize("kind", ["poisson", "mmpp"])
def test_random_process_mean_rate(kind):
    rng = np.random.default_rng(11)
    times = make_arrivals(kind, 200.0, 400.0, rng)
    assert np.all(np.diff(times) >= 0)
    assert times[-1] < 400_000.0
    assert times.size / 400.0 == pytest.approx(200.0, rel=0.05)


def test_poisson_gaps_exponential():
    times = poisson_arrivals(100.0, 200.0, np.random.default_rng(1))
    gaps = np.diff(times)
    assert gaps.mean() == pytest.approx(10.0, rel=0.03)
    # An exponential distribution has its standard deviation equal to its mean.
    assert gaps.std() == pytest.approx(10.0, rel=0.05)


def test_mmpp_is_burstier_than_poisson():
    # Counts per 100 ms window: Poisson has variance = mean; the MMPP far more.
    rng = np.random.default_rng(2)
    mmpp = np.histogram(mmpp_arrivals(200.0, 300.0, rng), bins=3000, range=(0, 300_000))[0]
    poisson = np.histogram(poisson_arrivals(200.0, 300.0, rng), bins=3000, range=(0, 300_000))[0]
    assert poisson.var() / poisson.mean() == pytest.approx(1.0, abs=0.15)
    assert mmpp.var() / mmpp.mean() > 5.0


def test_mmpp_parameters_set_mean_rate():
    parameters = MmppParameters(high_factor=3.0, low_factor=1.0, mean_stay_s=0.5)
    times = mmpp_arrivals(50.0, 500.0, np.random.default_rng(3), parameters)
    assert times.size / 500.0 == pytest.approx(100.0, rel=0.06)


def test_trace_scaled_to_rate():
    trace = np.array([0.0, 1.0, 4.0])
    # Mean rate 2 arrivals / 4 s = 0.5 req/s; at 1 req/s time shrinks by half.
    assert trace_arrivals(trace, 1.0, 5.0).tolist() == [0.0, 500.0, 2000.0, 3000.0, 3500.0]


@settings(max_examples=50, deadline=None)
@given(
    gaps=st.lists(st.floats(0.001, 5.0), min_size=2, max_size=50),
    rate=st.floats(1.0, 1000.0),
)
def test_trace_mean_rate_property(gaps, rate):
    trace = np.concatenate([[0.0], np.cumsum(gaps)])
    times = trace_arrivals(trace, rate, trace.size / rate)
    one_pass = times[: trace.size]
    assert (one_pass.size - 1) / (one_pass[-1] / 1000.0) == pytest.approx(rate, rel=1e-9)


def test_plain_trace_file(tmp_path):
    path = tmp_path / "trace.txt"
    path.write_text("# seconds\n10.5\n\n10.0\n12.0\n")
    assert read_trace(path).tolist() == [0.0, 0.5, 2.0]


def test_azure_csv_format(tmp_path):
    path = tmp_path / "azure.csv"
    path.write_bytes(
        b"TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
        b"2023-11-16 18:17:03.9799600,4808,10\r\n"
        b"2023-11-16 18:17:04.0319600,3180,8\r\n"
        b"2023-11-16 18:17:05.9799600,110,27\r\n"
    )
    assert read_trace(path).tolist() == pytest.approx([0.0, 0.052, 2.0])


@pytest.mark.skipif(AZURE_TRACE is None, reason="Azure code trace not present")
def test_azure_code_trace():
    trace = read_trace(AZURE_TRACE)
    assert trace.size == 8819
    assert trace[0] == 0.0
    assert np.all(np.diff(trace) >= 0)
    times = make_arrivals(f"trace:{AZURE_TRACE}", 300.0, 60.0, np.random.default_rng(0))
    assert times.size / 60.0 == pytest.approx(300.0, rel=0.1)


def test_trace_bad_line(tmp_path):
    path = tmp_path / "trace.txt"
    path.write_text("1.0\nsoon\n")
    with pytest.raises(ConfigError, match="line 2: expected one timestamp in seconds, got 'soon'"):
        read_trace(path)


def test_trace_bad_timestamp(tmp_path):
    path = tmp_path / "azure.csv"
    path.write_text("TIMESTAMP,x\nyesterday,1\n2023-11-16 18:17:04.0,2\n")
    with pytest.raises(ConfigError, match="invalid TIMESTAMP value"):
        read_trace(path)


def test_trace_too_short(tmp_path):
    path = tmp_path / "trace.txt"
    path.write_text("3.0\n3.0\n")
    with pytest.raises(ConfigError, match="at least two distinct timestamps"):
        read_trace(path)


def test_trace_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="trace file not found"):
        read_trace(tmp_path / "absent.csv")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bursty", "unknown arrival process 'bursty'; use one of uniform, poisson, mmpp, trace:PATH"),
        ("trace:", "unknown arrival process 'trace:'"),
    ],
)
def test_unknown_process_rejected(spec, message):
    with pytest.raises(ConfigError, match=message):
        make_arrivals(spec, 10.0, 1.0, np.random.default_rng(0))


@pytest.mark.parametrize(("rate", "duration_s"), [(0.0, 1.0), (10.0, -1.0)])
def test_bad_rate_or_duration_rejected(rate, duration_s):
    with pytest.raises(ConfigError, match="must be > 0"):
        uniform_arrivals(rate, duration_s)


@pytest.mark.parametrize(
    ("rate", "duration_s", "message"),
    [
        (float("inf"), 1.0, "arrival rate must be a finite number of req/s, got inf"),
        (10.0, float("inf"), "duration must be a finite number of s, got inf"),
    ],
)
@pytest.mark.parametrize("spec", ["uniform", "poisson", "mmpp"])
def test_infinite_rate_or_duration_rejected(spec, rate, duration_s, message):
    with pytest.raises(ConfigError, match=message):
        make_arrivals(spec, rate, duration_s, np.random.default_rng(0))


def test_request_count_limit():
    check_arrival_count(1000.0, MAX_ARRIVALS / 1000.0)
    with pytest.raises(
        ConfigError,
        match=r"1500 req/s for 1e\+07 s is 15,000,000,000 requests, more than the limit of "
        r"10,000,000; lower the rate or the duration",
    ):
        uniform_arrivals(1500.0, 1e7)
