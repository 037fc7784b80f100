"""The ``harpagon`` command line: one typer app, each command a thin wrapper over a module.

Commands: plan, simulate, compare, profile, serve, bench, demo. Errors that Harpagon raises
on purpose are printed as one message and exit with status 2; anything else is a bug.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from harpagon.errors import HarpagonError

app = typer.Typer(
    help="Plan, simulate and serve DNN inference pipelines at minimum cost under latency SLOs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Print Harpagon's own errors as a message and exit 2 instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HarpagonError as err:
            err_console.print(f"[bold red]error:[/bold red] {err}", highlight=False, markup=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


# Each command section below is owned by one part of the package; keep them in this order.

# --- plan -------------------------------------------------------------------------------
# (defined by harpagon.planning)

# --- simulate ---------------------------------------------------------------------------
# (defined by harpagon.simulation)

# --- compare ----------------------------------------------------------------------------
# (defined by harpagon.evaluation)

# --- profile / serve / bench / demo -------------------------------------------------------
# (defined by harpagon.profiling and harpagon.serving)

# --- profile ----------------------------------------------------------------------------


@app.command("profile")
@friendly_errors
def profile_command(
    model: str = typer.Argument(
        None, help="ONNX model file to measure. Omit it with --perf-analyzer."
    ),
    hardware: str = typer.Option(
        ..., "--hardware", help="Hardware type name the timings are stored under, e.g. cpu-1t."
    ),
    batch_sizes: str = typer.Option(
        "1,2,4,8,16", "--batch-sizes", help="Comma-separated batch sizes to measure."
    ),
    threads: int = typer.Option(
        None,
        "--threads",
        min=1,
        help="Intra-op threads. Default: the hardware type's threads in the CPU catalog, else 1.",
    ),
    warmup: int = typer.Option(2, "--warmup", min=0, help="Uncounted runs per batch size."),
    repeats: int = typer.Option(10, "--repeats", min=1, help="Timed runs per batch size."),
    output: str = typer.Option(
        None,
        "-o",
        "--output",
        help="Profile YAML to write. An existing profile of the same model keeps its other "
        "hardware entries. Default: print the YAML.",
    ),
    model_name: str = typer.Option(
        None, "--model-name", help="Profile name. Default: the model file name without .onnx."
    ),
    input_shape: list[str] = typer.Option(
        [],
        "--input-shape",
        help="Shape of an input without the batch dimension, NAME:D1,D2,... or D1,D2,... for "
        "a single input; needed for dynamic dimensions. Repeat per input.",
    ),
    perf_analyzer: str = typer.Option(
        None, "--perf-analyzer", help="Import this Triton perf_analyzer CSV (microseconds) instead."
    ),
    batch_size: int = typer.Option(
        None, "--batch-size", min=1, help="Batch size of the perf_analyzer run (with --perf-analyzer)."
    ),
    concurrency: int = typer.Option(
        None,
        "--concurrency",
        min=1,
        help="perf_analyzer row to import. Default: the lowest concurrency in the file.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Measure d(h, b) of an ONNX model here, or import a perf_analyzer CSV, as a profile."""
    from pathlib import Path

    import yaml
    from rich.table import Table

    from harpagon.errors import ConfigError
    from harpagon.profiling.ocr import local_hardware
    from harpagon.profiling.perf_analyzer import timing_from_perf_analyzer
    from harpagon.profiling.profiler import (
        machine_description,
        parse_batch_sizes,
        profile_onnx_model,
        write_profile,
    )

    # 1. Measure here, or read the perf_analyzer file.
    if perf_analyzer is not None:
        if model is not None:
            raise ConfigError("give either an ONNX model or --perf-analyzer, not both")
        if model_name is None or batch_size is None:
            raise ConfigError(
                "--perf-analyzer needs --model-name and --batch-size, because the CSV records neither"
            )
        timing = timing_from_perf_analyzer(perf_analyzer, batch_size, concurrency)
        timings = {batch_size: timing}
        name = model_name
        source = f"perf_analyzer CSV {Path(perf_analyzer).name}, batch size {batch_size}"
        if concurrency is not None:
            source += f", concurrency {concurrency}"
    else:
        if model is None:
            raise ConfigError("missing ONNX model file; give MODEL or --perf-analyzer FILE.csv")
        catalog = local_hardware()
        if threads is None:
            threads = (catalog[hardware].threads or 1) if hardware in catalog else 1
        sizes = parse_batch_sizes(batch_sizes)
        timings = profile_onnx_model(
            model, hardware, sizes, threads, warmup, repeats, input_shape, progress
        )
        name = model_name or Path(model).stem
        command = " ".join(["harpagon", *sys.argv[1:]])
        source = (
            f"harpagon profile on random input, {threads} intra-op thread(s), warm-up {warmup}, "
            f"repeats {repeats}; {machine_description()}; command: {command}"
        )

    # 2. Show the timings.
    table = Table(title=f"{name} on {hardware}")
    for column in ("batch size", "mean ms", "p99 ms", "ms per item", "throughput req/s"):
        table.add_column(column, justify="right")
    for size, timing in sorted(timings.items()):
        table.add_row(
            str(size),
            f"{timing.mean_ms:.2f}",
            f"{timing.p99_ms:.2f}",
            f"{timing.mean_ms / size:.2f}",
            f"{1000.0 * size / timing.mean_ms:.1f}",
        )
    err_console.print(table)

    # 3. Write or print the profile.
    if output is not None:
        write_profile(output, name, hardware, timings, source)
        err_console.print(f"wrote {output}")
    else:
        document = {
            "model": name,
            "latency_ms": {hardware: {b: round(t.mean_ms, 3) for b, t in sorted(timings.items())}},
            "p99_latency_ms": {hardware: {b: round(t.p99_ms, 3) for b, t in sorted(timings.items())}},
            "source": f"{hardware}: {source}",
        }
        typer.echo(yaml.safe_dump(document, sort_keys=False, width=100), nl=False)


def main() -> None:
    """Entry point for ``python -m harpagon``."""
    app()


if __name__ == "__main__":
    main()
