"""Measure the batch execution time d(h, b) of a model on this machine and write profile YAML.

Times are wall-clock milliseconds per batch, measured with ``time.perf_counter`` around one
call, after warm-up calls that are not counted. The profile format is the one the loader in
:mod:`harpagon.model.loading` reads: ``model``, ``latency_ms`` (mean per hardware type and
batch size), ``p99_latency_ms`` and a free-text ``source``.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harpagon.errors import ConfigError
from harpagon.model.profiles import Profile
from harpagon.serving.onnx_runner import ONNX_DTYPES, OnnxRunner, TensorSpec

__all__ = [
    "MAX_BATCH_INPUT_BYTES",
    "BatchTiming",
    "check_input_size",
    "input_bytes",
    "measure_batches",
    "profile_onnx_model",
    "random_inputs",
    "parse_input_shapes",
    "parse_batch_sizes",
    "machine_description",
    "cpu_model",
    "write_profile",
]


MAX_BATCH_INPUT_BYTES = 2 * 1024**3
"""Largest random input batch, in bytes, that the profiler builds (2 GiB).

The model's activations for such a batch are usually several times larger again, so the
limit stops a mistyped batch size or shape before it exhausts memory.
"""


@dataclass(frozen=True)
class BatchTiming:
    """Timing of one batch size over the counted repeats."""

    batch_size: int
    mean_ms: float
    p99_ms: float
    repeats: int


def measure_batches(
    run_batch: Callable[[int], Any],
    batch_sizes: Sequence[int],
    warmup: int = 2,
    repeats: int = 10,
    progress: bool = True,
    description: str = "profiling",
    prepare: Callable[[int], Any] | None = None,
) -> dict[int, BatchTiming]:
    """Time ``run_batch(b)`` for every batch size ``b``.

    Each size first calls ``prepare(b)`` if given (not timed), then runs ``warmup``
    uncounted calls, then ``repeats`` timed calls. The p99 is
    numpy's linearly interpolated 99th percentile, so with fewer than 100 repeats it lies
    between the two slowest calls.

    Raises
    ------
    ConfigError
        If a batch size is < 1, ``warmup`` < 0 or ``repeats`` < 1.
    """
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ConfigError(f"warmup must be >= 0, got {warmup}")
    for batch_size in batch_sizes:
        if batch_size < 1:
            raise ConfigError(f"batch sizes must be >= 1, got {batch_size}")

    timings: dict[int, BatchTiming] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not progress,
    ) as bar:
        task = bar.add_task(description, total=len(batch_sizes) * (warmup + repeats))
        for batch_size in batch_sizes:
            bar.update(task, description=f"{description} b={batch_size}")
            if prepare is not None:
                prepare(batch_size)
            for _ in range(warmup):
                run_batch(batch_size)
                bar.advance(task)
            samples_ms = []
            for _ in range(repeats):
                start = perf_counter()
                run_batch(batch_size)
                samples_ms.append((perf_counter() - start) * 1000.0)
                bar.advance(task)
            timings[batch_size] = BatchTiming(
                batch_size,
                float(np.mean(samples_ms)),
                float(np.percentile(samples_ms, 99)),
                repeats,
            )
    return timings


def parse_batch_sizes(text: str) -> list[int]:
    """Parse a comma-separated list of batch sizes such as ``1,2,4,8``.

    Raises
    ------
    ConfigError
        If an entry is not an integer >= 1 or the list is empty.
    """
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            size = int(part)
        except ValueError:
            raise ConfigError(f"batch size {part!r} is not an integer; use a list like 1,2,4,8") from None
        if size < 1:
            raise ConfigError(f"batch sizes must be >= 1, got {size}")
        sizes.append(size)
    if not sizes:
        raise ConfigError(f"no batch sizes in {text!r}; use a list like 1,2,4,8")
    return sorted(set(sizes))


def parse_input_shapes(specs: Sequence[str], inputs: Sequence[TensorSpec]) -> dict[str, tuple[int, ...]]:
    """Resolve the per-item shape (without the batch dimension) of every model input.

    ``specs`` entries are ``NAME:D1,D2,...`` or, for a model with one input, ``D1,D2,...``.
    An input without an entry uses its declared dimensions after the first (batch) one,
    which must then all be fixed.

    Raises
    ------
    ConfigError
        If an entry names an unknown input, is malformed, has the wrong rank, or an input
        with dynamic dimensions has no entry.
    """
    names = [spec.name for spec in inputs]
    given: dict[str, tuple[int, ...]] = {}
    for entry in specs:
        name, _, dims_text = entry.rpartition(":")
        if not name:
            if len(inputs) != 1:
                raise ConfigError(
                    f"--input-shape {entry!r} must name the input (NAME:D1,D2,...) because the "
                    f"model has {len(inputs)} inputs: {', '.join(names)}"
                )
            name = names[0]
        if name not in names:
            raise ConfigError(f"--input-shape names unknown input {name!r}; inputs: {', '.join(names)}")
        try:
            dims = tuple(int(dim) for dim in dims_text.split(","))
        except ValueError:
            raise ConfigError(
                f"--input-shape {entry!r} is not a list of integers; use for example 3,224,224"
            ) from None
        if any(dim < 1 for dim in dims):
            raise ConfigError(f"--input-shape {entry!r} has a dimension < 1")
        given[name] = dims

    shapes: dict[str, tuple[int, ...]] = {}
    for spec in inputs:
        declared = spec.shape[1:]
        if spec.name in given:
            if len(given[spec.name]) != len(declared):
                raise ConfigError(
                    f"--input-shape for {spec.name!r} has {len(given[spec.name])} dimensions, but "
                    f"the model declares {len(declared)} after the batch dimension: {list(declared)}"
                )
            shapes[spec.name] = given[spec.name]
            continue
        if not all(isinstance(dim, int) for dim in declared):
            raise ConfigError(
                f"input {spec.name!r} has dynamic dimensions {list(spec.shape)}; pass its shape "
                f"without the batch dimension, for example --input-shape {spec.name}:3,640,640"
            )
        shapes[spec.name] = tuple(int(dim) for dim in declared)  # type: ignore[arg-type]
    return shapes


def random_inputs(
    inputs: Sequence[TensorSpec], shapes: dict[str, tuple[int, ...]], batch_size: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """Build one random batch per input: normal floats, small non-negative integers, booleans.

    Raises
    ------
    ConfigError
        If an input has a type the profiler cannot fill.
    """
    rng = np.random.default_rng(seed)
    feed = {}
    for spec in inputs:
        dtype = ONNX_DTYPES.get(spec.type)
        if dtype is None:
            raise ConfigError(f"input {spec.name!r} has type {spec.type}, which the profiler cannot fill")
        shape = (batch_size, *shapes[spec.name])
        if np.issubdtype(dtype, np.floating):
            feed[spec.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype is np.bool_:
            feed[spec.name] = rng.integers(0, 2, shape).astype(np.bool_)
        else:
            feed[spec.name] = rng.integers(0, 10, shape).astype(dtype)
    return feed


def input_bytes(
    inputs: Sequence[TensorSpec], shapes: dict[str, tuple[int, ...]], batch_size: int
) -> int:
    """Return the bytes of one batch of all inputs: batch size x item shape x item size.

    Inputs of a type the profiler cannot fill count as 0 bytes; :func:`random_inputs`
    rejects them.
    """
    total = 0
    for spec in inputs:
        dtype = ONNX_DTYPES.get(spec.type)
        if dtype is not None:
            total += batch_size * math.prod(shapes[spec.name]) * np.dtype(dtype).itemsize
    return total


def check_input_size(
    inputs: Sequence[TensorSpec], shapes: dict[str, tuple[int, ...]], batch_sizes: Sequence[int]
) -> None:
    """Raise ConfigError if a batch of random input would exceed :data:`MAX_BATCH_INPUT_BYTES`."""
    for batch_size in batch_sizes:
        size = input_bytes(inputs, shapes, batch_size)
        if size > MAX_BATCH_INPUT_BYTES:
            described = ", ".join(f"{name} {list(shape)}" for name, shape in shapes.items())
            raise ConfigError(
                f"batch size {batch_size} needs {size:,} bytes ({size / 1024**3:.1f} GiB) of "
                f"random input for item shapes {described}, more than the limit of "
                f"{MAX_BATCH_INPUT_BYTES / 1024**3:g} GiB per batch; use smaller --batch-sizes "
                "or a smaller --input-shape"
            )


def machine_description() -> str:
    """Return a one-line description of this machine: CPU model, core count, OS, Python."""
    import os

    return (
        f"{cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def profile_onnx_model(
    model_path: str | Path,
    hardware: str,
    batch_sizes: Sequence[int],
    threads: int = 1,
    warmup: int = 2,
    repeats: int = 10,
    input_shapes: Sequence[str] = (),
    progress: bool = True,
) -> dict[int, BatchTiming]:
    """Measure an ONNX model on random input for each batch size.

    The session uses ``threads`` intra-op threads and one inter-op thread, as a worker does.
    Each timed call is one ``session.run`` on a pre-built batch, so input generation is not
    counted. Only the batch of the size being measured is kept in memory.

    Raises
    ------
    ConfigError
        If the model cannot be loaded, its input shapes cannot be resolved, or one batch
        of input would exceed :data:`MAX_BATCH_INPUT_BYTES`.
    """
    runner = OnnxRunner(model_path, threads)
    shapes = parse_input_shapes(input_shapes, runner.inputs)
    check_input_size(runner.inputs, shapes, batch_sizes)
    feed: dict[str, np.ndarray] = {}

    def build_feed(size: int) -> None:
        feed.clear()  # frees the previous size's batch before the next one is built
        feed.update(random_inputs(runner.inputs, shapes, size))

    return measure_batches(
        lambda size: runner.run(feed),
        batch_sizes,
        warmup=warmup,
        repeats=repeats,
        progress=progress,
        description=f"{Path(model_path).name} on {hardware}",
        prepare=build_feed,
    )


def write_profile(
    path: str | Path,
    model: str,
    hardware: str,
    timings: dict[int, BatchTiming],
    source: str,
) -> Profile:
    """Write (or merge into) a profile YAML file and return the resulting profile.

    If ``path`` already contains a profile of the same model, its entries for other hardware
    types are kept and the entry for ``hardware`` is replaced. ``source`` is stored per
    hardware type, one ``hardware: text`` line each.

    Raises
    ------
    ConfigError
        If ``path`` contains a profile of another model or is not a profile file.
    """
    path = Path(path)
    latency_ms: dict[str, dict[int, float]] = {}
    p99_latency_ms: dict[str, dict[int, float]] = {}
    sources: dict[str, str] = {}
    if path.exists():
        existing = _read_existing(path)
        if existing.get("model") != model:
            raise ConfigError(
                f"{path}: contains a profile of model {existing.get('model')!r}, not {model!r}; "
                "choose another output file or the same --model-name"
            )
        latency_ms = {hw: dict(sizes) for hw, sizes in (existing.get("latency_ms") or {}).items()}
        p99_latency_ms = {hw: dict(sizes) for hw, sizes in (existing.get("p99_latency_ms") or {}).items()}
        sources = _split_sources(str(existing.get("source", "")), list(latency_ms))

    latency_ms[hardware] = {b: round(t.mean_ms, 3) for b, t in sorted(timings.items())}
    p99_latency_ms[hardware] = {b: round(t.p99_ms, 3) for b, t in sorted(timings.items())}
    sources[hardware] = source

    document = {
        "model": model,
        "latency_ms": latency_ms,
        "p99_latency_ms": p99_latency_ms,
        "source": "\n".join(f"{hw}: {text}" for hw, text in sources.items()),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100))
    return Profile(model, latency_ms, document["source"], str(path))


def _read_existing(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: existing output file is not valid YAML ({err}); choose another -o") from err
    if not isinstance(document, dict) or "latency_ms" not in document:
        raise ConfigError(f"{path}: existing output file is not a profile (no latency_ms); choose another -o")
    return document


def _split_sources(text: str, hardware_names: list[str]) -> dict[str, str]:
    # Lines written by write_profile read "hardware: text"; anything else is kept for all.
    sources: dict[str, str] = {}
    for line in text.splitlines():
        name, separator, rest = line.partition(": ")
        if separator and name in hardware_names:
            sources[name] = rest
    for name in hardware_names:
        sources.setdefault(name, text)
    return sources
