"""Import Triton ``perf_analyzer`` CSV files (``perf_analyzer -f FILE.csv``) as profile timings.

perf_analyzer writes one row per concurrency level, sorted by throughput, with latencies in
microseconds. Its header contains ``Concurrency``, ``Inferences/Second``, the latency
components ``Client Send``, ``Network+Server Send/Recv``, ``Server Queue``,
``Server Compute Input``, ``Server Compute Infer``, ``Server Compute Output`` and
``Client Recv``, the percentiles ``p50 latency`` ... ``p99 latency`` and, in newer versions,
``Avg latency``. The CSV does not record the batch size or the hardware, so the caller gives
both.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from harpagon.errors import ConfigError
from harpagon.profiling.profiler import BatchTiming

__all__ = ["PerfAnalyzerRow", "read_perf_analyzer_csv", "timing_from_perf_analyzer"]

LATENCY_COMPONENTS = (
    "Client Send",
    "Network+Server Send/Recv",
    "Server Queue",
    "Server Compute Input",
    "Server Compute Infer",
    "Server Compute Output",
    "Client Recv",
)
"""Columns whose sum is the mean client latency when ``Avg latency`` is missing."""


@dataclass(frozen=True)
class PerfAnalyzerRow:
    """One concurrency level of a perf_analyzer run, converted to milliseconds."""

    concurrency: int
    mean_ms: float
    """``Avg latency``, or the sum of the latency components when that column is missing."""
    p99_ms: float | None
    """``p99 latency``, or ``None`` when that column is missing."""


def _number(row: dict[str, str], column: str, path: Path, line: int) -> float:
    text = (row.get(column) or "").strip()
    try:
        return float(text)
    except ValueError:
        raise ConfigError(
            f"{path}: line {line}: column {column!r} must be a number (microseconds), got {text!r}"
        ) from None


def read_perf_analyzer_csv(path: str | Path) -> list[PerfAnalyzerRow]:
    """Read every row of a perf_analyzer CSV file, sorted by concurrency.

    Raises
    ------
    ConfigError
        If the file is missing or empty, ``Concurrency`` is missing, neither ``Avg latency``
        nor every latency component is present, or a value is not a number.
    """
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{path}: perf_analyzer CSV file not found") from None
    reader = csv.DictReader(lines)
    columns = [name.strip() for name in (reader.fieldnames or [])]
    reader.fieldnames = columns

    if "Concurrency" not in columns:
        raise ConfigError(
            f"{path}: missing column 'Concurrency'; expected the CSV that perf_analyzer -f writes"
        )
    has_average = "Avg latency" in columns
    missing = [name for name in LATENCY_COMPONENTS if name not in columns]
    if not has_average and missing:
        raise ConfigError(
            f"{path}: missing column 'Avg latency' and latency component column(s) "
            f"{', '.join(repr(name) for name in missing)}; one of the two is needed"
        )
    has_p99 = "p99 latency" in columns

    rows = []
    for line, row in enumerate(reader, start=2):
        concurrency = _number(row, "Concurrency", path, line)
        if has_average:
            mean_us = _number(row, "Avg latency", path, line)
        else:
            mean_us = sum(_number(row, name, path, line) for name in LATENCY_COMPONENTS)
        p99_us = _number(row, "p99 latency", path, line) if has_p99 else None
        if not mean_us > 0:
            raise ConfigError(f"{path}: line {line}: mean latency must be > 0 microseconds, got {mean_us}")
        rows.append(
            PerfAnalyzerRow(
                int(concurrency),
                mean_us / 1000.0,
                None if p99_us is None else p99_us / 1000.0,
            )
        )
    if not rows:
        raise ConfigError(f"{path}: the CSV has a header but no rows")
    return sorted(rows, key=lambda row: row.concurrency)


def timing_from_perf_analyzer(
    path: str | Path, batch_size: int, concurrency: int | None = None
) -> BatchTiming:
    """Return the batch timing of one concurrency level of a perf_analyzer CSV file.

    With ``concurrency=None`` the lowest level is used: at concurrency 1 a request does not
    wait behind others, so its latency is closest to the batch execution time d(h, b).

    Raises
    ------
    ConfigError
        As :func:`read_perf_analyzer_csv`, or if the file has no row for ``concurrency``.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    rows = read_perf_analyzer_csv(path)
    if concurrency is None:
        row = rows[0]
    else:
        matching = [row for row in rows if row.concurrency == concurrency]
        if not matching:
            levels = ", ".join(str(row.concurrency) for row in rows)
            raise ConfigError(f"{path}: no row for concurrency {concurrency}; the file has {levels}")
        row = matching[0]
    p99_ms = row.p99_ms if row.p99_ms is not None else row.mean_ms
    return BatchTiming(batch_size, row.mean_ms, p99_ms, repeats=0)
