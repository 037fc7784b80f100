"""Tests of the Triton perf_analyzer CSV importer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harpagon.errors import ConfigError
from harpagon.profiling.perf_analyzer import (
    LATENCY_COMPONENTS,
    read_perf_analyzer_csv,
    timing_from_perf_analyzer,
)

HEADER = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,"
    "p50 latency,p90 latency,p95 latency,p99 latency"
)
# Rows are sorted by throughput, as perf_analyzer writes them.
ROWS = [
    "1,69.2,225,2148,64,206,11781,19,0,13891,18795,19753,21018",
    "3,84.2,237,1768,21673,209,11742,17,0,35398,43984,47085,51701",
    "2,87.2,235,1973,9151,190,11346,17,0,21874,28557,29768,34766",
]


def write_csv(tmp_path, header, rows, name="perf.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_components_summed_without_average(tmp_path):
    path = write_csv(tmp_path, HEADER, ROWS)

    rows = read_perf_analyzer_csv(path)

    assert [row.concurrency for row in rows] == [1, 2, 3]
    # 225 + 2148 + 64 + 206 + 11781 + 19 + 0 microseconds.
    assert rows[0].mean_ms == pytest.approx(14.443)
    assert rows[0].p99_ms == pytest.approx(21.018)


def test_average_column_preferred(tmp_path):
    path = write_csv(tmp_path, HEADER + ",Avg latency", [ROWS[0] + ",15000"])

    rows = read_perf_analyzer_csv(path)

    assert rows[0].mean_ms == pytest.approx(15.0)


def test_average_alone_is_enough(tmp_path):
    path = write_csv(tmp_path, "Concurrency,Inferences/Second,Avg latency", ["1,50.0,20000"])

    (row,) = read_perf_analyzer_csv(path)

    assert row.mean_ms == pytest.approx(20.0)
    assert row.p99_ms is None


def test_timing_uses_lowest_concurrency(tmp_path):
    path = write_csv(tmp_path, HEADER, ROWS)

    timing = timing_from_perf_analyzer(path, batch_size=8)

    assert timing.batch_size == 8
    assert timing.mean_ms == pytest.approx(14.443)
    assert timing.p99_ms == pytest.approx(21.018)


def test_timing_of_chosen_concurrency(tmp_path):
    path = write_csv(tmp_path, HEADER, ROWS)

    timing = timing_from_perf_analyzer(path, batch_size=4, concurrency=2)

    assert timing.mean_ms == pytest.approx((235 + 1973 + 9151 + 190 + 11346 + 17 + 0) / 1000)
    assert timing.p99_ms == pytest.approx(34.766)


def test_timing_rejects_absent_concurrency(tmp_path):
    path = write_csv(tmp_path, HEADER, ROWS)

    with pytest.raises(ConfigError, match="no row for concurrency 5; the file has 1, 2, 3"):
        timing_from_perf_analyzer(path, batch_size=1, concurrency=5)


def test_missing_concurrency_column_named(tmp_path):
    path = write_csv(tmp_path, "Inferences/Second,Avg latency", ["50.0,20000"])

    with pytest.raises(ConfigError, match="missing column 'Concurrency'"):
        read_perf_analyzer_csv(path)


def test_missing_component_column_named(tmp_path):
    header = HEADER.replace("Server Queue,", "")
    row = ROWS[0].replace(",64,", ",", 1)
    path = write_csv(tmp_path, header, [row])

    with pytest.raises(ConfigError, match="'Avg latency' and latency component column\\(s\\) 'Server Queue'"):
        read_perf_analyzer_csv(path)


def test_non_numeric_value_named(tmp_path):
    path = write_csv(tmp_path, HEADER, [ROWS[0].replace("11781", "fast")])

    with pytest.raises(ConfigError, match="line 2: column 'Server Compute Infer' must be a number"):
        read_perf_analyzer_csv(path)


def test_header_without_rows_rejected(tmp_path):
    path = write_csv(tmp_path, HEADER, [])

    with pytest.raises(ConfigError, match="header but no rows"):
        read_perf_analyzer_csv(path)


def test_missing_file_rejected(tmp_path):
    with pytest.raises(ConfigError, match="perf_analyzer CSV file not found"):
        read_perf_analyzer_csv(tmp_path / "absent.csv")


@settings(max_examples=50, deadline=None)
@given(
    concurrency=st.integers(1, 64),
    components=st.lists(st.integers(0, 10**7), min_size=7, max_size=7).filter(lambda v: sum(v) > 0),
)
def test_component_sum_in_milliseconds(tmp_path_factory, concurrency, components):
    header = "Concurrency," + ",".join(LATENCY_COMPONENTS)
    row = f"{concurrency}," + ",".join(str(value) for value in components)
    path = write_csv(tmp_path_factory.mktemp("csv"), header, [row])

    (parsed,) = read_perf_analyzer_csv(path)

    assert parsed.concurrency == concurrency
    assert parsed.mean_ms == pytest.approx(sum(components) / 1000.0)
