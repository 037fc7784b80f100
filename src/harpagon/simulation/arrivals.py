"""Arrival processes for the simulator: uniform, Poisson, a bursty MMPP and recorded traces.

Every generator returns application arrival times in ms, sorted, starting near 0 and
ending before ``duration_s`` seconds, with a mean rate of ``rate`` requests per second.
Traces are read from the Azure public-dataset CSV format (a ``TIMESTAMP`` column) or from
a plain file of one timestamp in seconds per line.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from harpagon.errors import ConfigError

__all__ = [
    "ARRIVAL_KINDS",
    "MAX_ARRIVALS",
    "MmppParameters",
    "check_arrival_count",
    "make_arrivals",
    "mmpp_arrivals",
    "poisson_arrivals",
    "read_trace",
    "trace_arrivals",
    "uniform_arrivals",
]

ARRIVAL_KINDS = ("uniform", "poisson", "mmpp", "trace:PATH")
"""Accepted values of the ``--arrivals`` option."""

MAX_ARRIVALS = 10_000_000
"""Most application requests (rate x duration) that one set of arrivals may hold.

A simulation of the shipped traffic application (5 module requests per application
request) peaked at about 0.46 KB of memory per application request (4.5 million requests,
2.1 GB, measured with ``/usr/bin/time``), so about 5 GB at the limit.

NOTE: memory grows with the module requests per application request, so an application
with more modules or higher rate factors needs more at the same limit.
"""


@dataclass(frozen=True)
class MmppParameters:
    """A two-state Markov-modulated Poisson process with the same mean rate as the plan.

    The process alternates between a high state at ``high_factor * rate`` and a low state
    at ``low_factor * rate``. Each stay is exponential with mean ``mean_stay_s`` seconds in
    both states, so each state takes half the time on average. The mean rate is then
    ``(high_factor + low_factor) / 2 * rate``, which is ``rate`` for the defaults.
    """

    high_factor: float = 1.75
    low_factor: float = 0.25
    mean_stay_s: float = 1.0


def check_arrival_count(rate: float, duration_s: float) -> None:
    """Raise ConfigError unless the rate and duration are finite and > 0, and their product
    (the request count) is at most :data:`MAX_ARRIVALS`.
    """
    if not rate > 0:
        raise ConfigError(f"arrival rate must be > 0 req/s, got {rate}")
    if not duration_s > 0:
        raise ConfigError(f"duration must be > 0 s, got {duration_s}")
    if not math.isfinite(rate):
        raise ConfigError(f"arrival rate must be a finite number of req/s, got {rate}")
    if not math.isfinite(duration_s):
        raise ConfigError(f"duration must be a finite number of s, got {duration_s}")
    count = rate * duration_s
    if count > MAX_ARRIVALS:
        raise ConfigError(
            f"{rate:.6g} req/s for {duration_s:.6g} s is {count:,.0f} requests, more than the "
            f"limit of {MAX_ARRIVALS:,}; lower the rate or the duration"
        )


def uniform_arrivals(rate: float, duration_s: float) -> np.ndarray:
    """Return arrivals exactly ``1000 / rate`` ms apart, from 0, for ``duration_s`` seconds.

    Examples
    --------
    >>> uniform_arrivals(4.0, 1.0).tolist()
    [0.0, 250.0, 500.0, 750.0]
    """
    check_arrival_count(rate, duration_s)
    count = max(1, round(rate * duration_s))
    return np.arange(count, dtype=np.float64) * (1000.0 / rate)


def poisson_arrivals(rate: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Return Poisson arrivals (exponential gaps of mean ``1000 / rate`` ms) within ``duration_s``."""
    check_arrival_count(rate, duration_s)
    duration_ms = duration_s * 1000.0
    count = int(rate * duration_s + 10.0 * np.sqrt(rate * duration_s) + 10)
    times = np.cumsum(rng.exponential(1000.0 / rate, size=count))
    while times[-1] < duration_ms:
        more = np.cumsum(rng.exponential(1000.0 / rate, size=count)) + times[-1]
        times = np.concatenate([times, more])
    return times[times < duration_ms]


def mmpp_arrivals(
    rate: float,
    duration_s: float,
    rng: np.random.Generator,
    parameters: MmppParameters = MmppParameters(),
) -> np.ndarray:
    """Return arrivals of the two-state MMPP described by ``parameters``.

    The first state is high or low with probability 1/2 (the stationary distribution).
    Within a stay of length ``t`` in a state of rate ``lambda``, the number of arrivals is
    Poisson(``lambda t``) and their times are uniform over the stay.
    """
    check_arrival_count(rate, duration_s)
    duration_ms = duration_s * 1000.0
    mean_stay_ms = parameters.mean_stay_s * 1000.0
    rates = (parameters.high_factor * rate, parameters.low_factor * rate)

    # 1. Stays: alternate states from a random first one until the duration is covered.
    stays: list[float] = []
    covered_ms = 0.0
    while covered_ms < duration_ms:
        stay = float(rng.exponential(mean_stay_ms))
        stays.append(stay)
        covered_ms += stay
    bounds = np.concatenate([[0.0], np.cumsum(stays)])
    first_state = int(rng.integers(2))

    # 2. Arrivals of each stay: a Poisson count placed uniformly.
    parts = []
    for index, (start_ms, end_ms) in enumerate(zip(bounds[:-1], bounds[1:])):
        state_rate = rates[(first_state + index) % 2]
        count = rng.poisson(state_rate * (end_ms - start_ms) / 1000.0)
        parts.append(rng.uniform(start_ms, end_ms, size=count))
    times = np.sort(np.concatenate(parts))
    return times[times < duration_ms]


def read_trace(path: str | Path) -> np.ndarray:
    """Read a trace of request timestamps and return them in seconds from the first, sorted.

    Two formats are read. The first is a CSV with a ``TIMESTAMP`` column of
    ``YYYY-MM-DD HH:MM:SS.fffffff`` values (the Azure public datasets, CRLF line ends
    accepted). The second is a plain file of one timestamp in seconds per line, where blank
    lines and lines starting with ``#`` are skipped.

    Raises
    ------
    ConfigError
        If the file is missing, a timestamp cannot be parsed, or the trace has fewer than
        two distinct timestamps.
    """
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            first_line = handle.readline()
            handle.seek(0)
            if "TIMESTAMP" in first_line.upper().split(","):
                seconds = _read_timestamp_csv(handle, path)
            else:
                seconds = _read_seconds(handle, path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: trace file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: expected a trace file, found a directory") from None
    if seconds.size < 2 or seconds.max() <= seconds.min():
        raise ConfigError(
            f"{path}: a trace needs at least two distinct timestamps, got {seconds.size} row(s)"
        )
    seconds = np.sort(seconds)
    return seconds - seconds[0]


def _read_timestamp_csv(handle: TextIO, path: Path) -> np.ndarray:
    reader = csv.DictReader(handle)
    column = next(name for name in reader.fieldnames or [] if name.strip().upper() == "TIMESTAMP")
    values = [row[column].strip() for row in reader if row.get(column, "").strip()]
    try:
        stamps = np.array(values, dtype="datetime64[ns]")
    except ValueError as err:
        raise ConfigError(
            f"{path}: invalid TIMESTAMP value ({err}); expected YYYY-MM-DD HH:MM:SS.fffffff"
        ) from err
    return (stamps - stamps.min()).astype(np.int64) / 1e9


def _read_seconds(handle: TextIO, path: Path) -> np.ndarray:
    values = []
    for number, line in enumerate(handle, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            values.append(float(text))
        except ValueError:
            raise ConfigError(
                f"{path}: line {number}: expected one timestamp in seconds, got {text!r}"
            ) from None
    return np.array(values, dtype=np.float64)


def trace_arrivals(trace_s: np.ndarray, rate: float, duration_s: float) -> np.ndarray:
    """Return a trace's arrivals with time scaled so its mean rate is ``rate``, in ms.

    The trace's mean rate is (timestamps - 1) / span. When the scaled trace is shorter
    than ``duration_s`` it is replayed again, one mean interval after its last arrival.

    Examples
    --------
    >>> trace_arrivals(np.array([0.0, 1.0, 4.0]), 1.0, 5.0).tolist()
    [0.0, 500.0, 2000.0, 3000.0, 3500.0]
    """
    check_arrival_count(rate, duration_s)
    trace_s = np.sort(np.asarray(trace_s, dtype=np.float64))
    trace_s = trace_s - trace_s[0]
    span_s = float(trace_s[-1])
    trace_rate = (trace_s.size - 1) / span_s
    scaled_ms = trace_s * (trace_rate / rate) * 1000.0
    replay_ms = scaled_ms[-1] + 1000.0 / rate
    duration_ms = duration_s * 1000.0
    repeats = int(np.ceil(duration_ms / replay_ms))
    times = (scaled_ms[None, :] + replay_ms * np.arange(repeats)[:, None]).ravel()
    return times[times < duration_ms]


def make_arrivals(
    spec: str, rate: float, duration_s: float, rng: np.random.Generator
) -> np.ndarray:
    """Return arrivals (ms) for an ``--arrivals`` value: uniform, poisson, mmpp or trace:PATH.

    Raises
    ------
    ConfigError
        If ``spec`` names no known process, or the trace cannot be read.
    """
    if spec == "uniform":
        return uniform_arrivals(rate, duration_s)
    if spec == "poisson":
        return poisson_arrivals(rate, duration_s, rng)
    if spec == "mmpp":
        return mmpp_arrivals(rate, duration_s, rng)
    if spec.startswith("trace:") and len(spec) > len("trace:"):
        return trace_arrivals(read_trace(spec[len("trace:"):]), rate, duration_s)
    raise ConfigError(
        f"unknown arrival process {spec!r}; use one of {', '.join(ARRIVAL_KINDS)}"
    )
