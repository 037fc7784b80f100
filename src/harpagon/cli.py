"""The ``harpagon`` command line: one typer app, each command a thin wrapper over a module.

Commands: plan, simulate, compare, profile, serve, bench, demo. Errors that Harpagon raises
on purpose are printed as one message and exit with status 2; anything else is a bug.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from harpagon.errors import HarpagonError

app = typer.Typer(
    help="Plan, simulate and serve DNN inference pipelines at minimum cost under latency SLOs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Tables are printed at least this many columns wide. Otherwise rich cuts hardware names
# and numbers to fit the 80 columns that it assumes when the output is not a terminal.
MIN_TABLE_WIDTH = 140
_width = max(shutil.get_terminal_size().columns, MIN_TABLE_WIDTH)
console = Console(width=_width)
err_console = Console(stderr=True, width=_width)

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Print Harpagon's own errors as a message and exit 2 instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HarpagonError as err:
            # Messages quote values such as "edge [a, b]", which rich would read as markup.
            err_console.print(f"[bold red]error:[/bold red] {escape(str(err))}", highlight=False)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


def _print_version(value: bool) -> None:
    if value:
        from harpagon import __version__

        typer.echo(f"harpagon {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True,
        help="Print the installed harpagon version and exit.",
    ),
) -> None:
    """Plan, simulate and serve DNN inference pipelines at minimum cost under latency SLOs."""


# --- Option checks shared by the commands -----------------------------------------------


def _check_output_path(path: str | None, option: str) -> None:
    """Raise ConfigError unless ``path`` can be written: its folder exists and is writable.

    Commands call this before their work, so a long run never ends in a failed write.
    ``None`` (the option not given) passes.
    """
    from harpagon.errors import ConfigError

    if path is None:
        return
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        reason = "it is a directory"
    elif not folder.is_dir():
        reason = f"folder {folder} does not exist"
    elif not os.access(folder, os.W_OK):
        reason = f"folder {folder} is not writable"
    elif target.exists() and not os.access(target, os.W_OK):
        reason = "the file is not writable"
    else:
        return
    raise ConfigError(f"cannot write {path} ({reason}); choose a writable path for {option}")


def _check_positive(value: float | None, option: str, unit: str) -> None:
    """Raise ConfigError unless an option's value is a finite number > 0; ``None`` passes."""
    from harpagon.errors import ConfigError

    if value is None:
        return
    if not value > 0:
        raise ConfigError(f"{option} must be > 0 {unit}, got {value}")
    if not math.isfinite(value):
        raise ConfigError(f"{option} must be a finite number of {unit}, got {value}")


# Each command section below is owned by one part of the package; keep them in this order.

# --- plan -------------------------------------------------------------------------------


def _plan_inputs(
    app_spec: str, profiles_path: str | None, hardware_path: str | None, statistic: str = "mean"
) -> tuple[Any, Any, Any]:
    """Load the application, profiles and hardware catalog of ``harpagon plan``."""
    from harpagon.errors import ConfigError
    from harpagon.model.loading import load_hardware, load_profiles, resolve_application

    application = resolve_application(app_spec)
    if application.name == "ocr" and profiles_path is None and hardware_path is None:
        # The OCR app runs on this machine's CPUs, so it is planned on profiles measured here.
        try:
            from harpagon.profiling.ocr import ensure_local_profiles
        except ImportError as err:
            raise ConfigError(
                f"failed to import the OCR profiler ({err}); "
                "pass --profiles and --hardware to plan on existing profiles"
            ) from err
        profiles, hardware = ensure_local_profiles(statistic=statistic)
        return application, profiles, hardware
    return application, load_profiles(profiles_path, statistic), load_hardware(hardware_path)


def _print_plan(plan: Any, hardware: Any) -> None:
    """Print one table per module, the shared machines if any, then the plan's totals."""
    from rich.table import Table

    for module in plan.modules:
        table = Table(
            title=(
                f"{module.name} ({module.profile}): {module.rate:.6g} req/s, "
                f"budget {module.budget_ms:.2f} ms, latency {module.latency_ms:.2f} ms, "
                f"{module.cost_per_hour:.3f} USD/h"
            ),
            title_justify="left",
        )
        for column in ("group", "hardware", "workers", "batch size", "rate req/s",
                       "dummy req/s", "latency ms", "USD/h"):
            table.add_column(column, justify="left" if column in ("group", "hardware") else "right")
        for index, group in enumerate(module.groups):
            table.add_row(
                "main" if index == 0 else "residual",
                group.hardware,
                str(group.workers),
                str(group.batch_size),
                f"{group.rate:.2f}",
                f"{group.dummy_rate:.2f}",
                f"{group.latency_ms:.2f}",
                f"{group.workers * hardware[group.hardware].price_per_hour:.3f}",
            )
        if not module.groups:
            table.caption = "no own groups: runs on the shared machines below"
        console.print(table)
    if plan.shared_machines:
        shared = Table(title="shared machines (packed in a duty cycle)", title_justify="left")
        for column in ("machine", "hardware", "duty cycle ms", "module", "batch size",
                       "rate req/s", "USD/h"):
            shared.add_column(column, justify="left" if column in ("hardware", "module") else "right")
        for index, machine in enumerate(plan.shared_machines):
            for position, member in enumerate(machine.members):
                # The machine's price is counted once, on its first member's row.
                price = hardware[machine.hardware].price_per_hour if position == 0 else None
                shared.add_row(
                    str(index),
                    machine.hardware,
                    f"{machine.duty_cycle_ms:.2f}",
                    member.module,
                    str(member.batch_size),
                    f"{member.rate:.2f}",
                    "" if price is None else f"{price:.3f}",
                )
        console.print(shared)
    lower_bound = plan.lower_bound_cost_per_hour
    console.print(
        f"[bold]{plan.policy}[/bold] plan for {plan.app} at {plan.rate:.6g} req/s: "
        f"cost {plan.cost_per_hour:.3f} USD/h, end-to-end latency {plan.latency_ms:.2f} ms "
        f"(SLO {plan.slo_ms:.6g} ms), fluid lower bound "
        f"{'n/a' if lower_bound is None else f'{lower_bound:.3f} USD/h'}, "
        f"planned in {plan.planning_ms:.2f} ms",
        highlight=False,
    )


@app.command("plan")
@friendly_errors
def plan_command(
    app_spec: str = typer.Option(
        ..., "--app", help="Application YAML file, or the name of a shipped application."
    ),
    profiles_path: str = typer.Option(
        None, "--profiles",
        help="Profiles: a folder of YAML files, one YAML file or a CSV file. Default: the shipped "
        "GPU profiles; for --app ocr, this machine's CPU profiles, measured on first use (up to "
        "about a minute) and cached.",
    ),
    hardware_path: str = typer.Option(
        None, "--hardware",
        help="Hardware catalog YAML file; profiled hardware types missing from it are not used. "
        "Default: the shipped GPU catalog; for --app ocr, this machine's CPU catalog.",
    ),
    policy: str = typer.Option(
        "harpagon", "--policy", help="Planning policy: harpagon, optimal or a baseline (nexus, ...)."
    ),
    rate: float = typer.Option(
        None, "--rate", help="Application request rate in req/s. Default: the application's rate."
    ),
    slo_ms: float = typer.Option(
        None, "--slo-ms", help="End-to-end latency SLO in ms. Default: the application's SLO."
    ),
    headroom: float = typer.Option(
        0.0, "--headroom", help="Plan for rate x (1 + FRACTION), e.g. 0.2 for 20% more traffic."
    ),
    output: str = typer.Option(None, "-o", "--output", help="Write the plan JSON to this file."),
    statistic: str = typer.Option(
        "mean", "--statistic",
        help="Profile statistic to plan on: mean, or p99 (falls back to the mean where a profile has no p99).",
    ),
) -> None:
    """Plan an application at minimum cost under its latency SLO and print the plan."""
    from harpagon.errors import ConfigError
    from harpagon.planning.registry import get_planner

    _check_positive(rate, "--rate", "req/s")
    _check_positive(slo_ms, "--slo-ms", "ms")
    if not (headroom >= 0 and math.isfinite(headroom)):
        raise ConfigError(
            f"--headroom must be a finite fraction >= 0 (0.2 plans for 20% more), got {headroom}"
        )
    _check_output_path(output, "-o")
    planner = get_planner(policy)
    application, profiles, hardware = _plan_inputs(app_spec, profiles_path, hardware_path, statistic)
    if slo_ms is not None:
        application = application.with_overrides(slo_ms=slo_ms)
    plan = planner(application, profiles, hardware, rate=rate, headroom=headroom)
    _print_plan(plan, hardware)
    if output is not None:
        try:
            plan.save(output)
        except OSError as err:
            raise ConfigError(
                f"{output}: cannot write the plan ({err.strerror}); choose a writable path for -o"
            ) from err
        err_console.print(f"wrote {output}")


# --- simulate ---------------------------------------------------------------------------
# (defined by harpagon.simulation)


@app.command("simulate")
@friendly_errors
def simulate_command(
    plan_path: str = typer.Argument(..., metavar="PLAN.json", help="Plan JSON file written by harpagon plan."),
    app_spec: str = typer.Option(
        None, "--app",
        help="Application YAML file or shipped name. Default: the shipped application named in the plan.",
    ),
    profiles_path: str = typer.Option(
        None, "--profiles", help="Profiles the plan was made with. Default: as for harpagon plan."
    ),
    hardware_path: str = typer.Option(
        None, "--hardware", help="Hardware catalog the plan was made with. Default: as for harpagon plan."
    ),
    arrivals: str = typer.Option(
        "uniform", "--arrivals",
        help="Arrival process: uniform, poisson, mmpp (two-state bursts, same mean rate) "
        "or trace:PATH (recorded timestamps scaled to the rate).",
    ),
    duration_s: float = typer.Option(60.0, "--duration", help="Simulated time in seconds."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same run."),
    dispatch: str = typer.Option(
        "planned", "--dispatch",
        help="planned (each group's policy), batch_aware or round_robin.",
    ),
    clock: str = typer.Option(
        "planned", "--clock",
        help="Batch clocks: planned (the plan's collection rates) or capacity (each group "
        "collects at its capacity, as harpagon serve does by default).",
    ),
    jitter: float = typer.Option(
        0.0, "--jitter", help="Batch times vary uniformly within +- FRACTION of the profile (0 <= FRACTION < 1)."
    ),
    fanout: str = typer.Option(
        "deterministic", "--fanout", help="Requests per application request: deterministic or poisson."
    ),
    rate: float = typer.Option(
        None, "--rate", help="Application arrival rate in req/s. Default: the plan's rate."
    ),
    json_path: str = typer.Option(None, "--json", help="Also write the report as JSON to this file."),
) -> None:
    """Simulate a plan in virtual time and report SLO attainment, latency, batches and cost."""
    import json

    import numpy as np

    from harpagon.errors import ConfigError, InvalidPlan
    from harpagon.model import load_plan
    from harpagon.model.loading import shipped_app_names
    from harpagon.simulation import check_arrival_count, make_arrivals, render, simulate, summarize

    _check_positive(rate, "--rate", "req/s")
    _check_positive(duration_s, "--duration", "s")
    _check_output_path(json_path, "--json")
    plan = load_plan(plan_path)
    arrival_rate = plan.rate if rate is None else rate
    check_arrival_count(arrival_rate, duration_s)
    if app_spec is None and plan.app not in shipped_app_names():
        raise ConfigError(
            f"the plan is for application {plan.app!r}, which is not shipped; pass --app FILE "
            "(and --profiles/--hardware if it used others)"
        )
    application, profiles, hardware = _plan_inputs(app_spec or plan.app, profiles_path, hardware_path)
    arrival_ms = make_arrivals(arrivals, arrival_rate, duration_s, np.random.default_rng([seed, 1]))
    try:
        run = simulate(
            plan, application, profiles, hardware, arrival_ms, dispatch=dispatch,
            jitter=jitter, fanout=fanout, seed=seed, rate=arrival_rate, clock=clock,
        )
    except InvalidPlan as err:
        raise InvalidPlan(
            err.problems + [
                f"the plan was checked against {profiles.path} and {hardware.path}; "
                "pass the --app, --profiles and --hardware it was made with"
            ]
        ) from err
    report = summarize(run)
    render(report, console)
    if json_path is not None:
        try:
            with open(json_path, "w") as handle:
                json.dump(report, handle, indent=1)
                handle.write("\n")
        except OSError as err:
            raise ConfigError(
                f"cannot write {json_path} ({err.strerror}); choose a writable path for --json"
            ) from err
        err_console.print(f"wrote {json_path}")

# --- compare ----------------------------------------------------------------------------
# (defined by harpagon.evaluation)


@app.command("compare")
@friendly_errors
def compare_command(
    suite: str = typer.Option(
        "standard", "--suite", help="Workloads: standard (shipped apps on a rate x SLO grid), "
        "random (500 random workloads) or all."
    ),
    policies: str = typer.Option(
        None, "--policies", help="Comma-separated policies to compare; harpagon is always "
        "included as the reference. Default: harpagon, optimal, nexus, scrooge, inferline "
        "and the four harpagon ablations."
    ),
    json_out: str = typer.Option(None, "--json", help="Write the summary and every outcome as JSON here."),
    plot_out: str = typer.Option(None, "--plot", help="Write the comparison figure (PNG) here."),
    markdown_out: str = typer.Option(None, "--markdown", help="Write the summary tables as Markdown here."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random suite."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    simulate_s: float = typer.Option(
        2.0, "--simulate-s", help="Seconds of simulated uniform traffic per plan; 0 skips simulation."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Compare planners on a workload suite: cost ratios, validity, SLO attainment, timing."""
    from pathlib import Path

    from harpagon.evaluation.runner import compare_suite, parse_policies

    _check_output_path(json_out, "--json")
    _check_output_path(plot_out, "--plot")
    _check_output_path(markdown_out, "--markdown")
    compare_suite(
        suite=suite,
        policies=parse_policies(policies),
        seed=seed,
        workers=workers,
        simulate_s=simulate_s,
        json_path=Path(json_out) if json_out else None,
        plot_path=Path(plot_out) if plot_out else None,
        markdown_path=Path(markdown_out) if markdown_out else None,
        console=console,
        progress=progress,
    )

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

    _check_output_path(output, "-o")

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

# --- serve ------------------------------------------------------------------------------


def _serving_inputs(
    app_spec: str, adapter_path: str | None, profiles_path: str | None, hardware_path: str | None
) -> tuple[Any, Any, Any]:
    """Return ``(adapter, profiles, hardware)`` for ``harpagon serve``; profiles may be None."""
    import importlib

    from harpagon.errors import ConfigError
    from harpagon.model.loading import load_application, load_hardware, load_profiles

    if (profiles_path is None) != (hardware_path is None):
        raise ConfigError("give --profiles and --hardware together, or neither")
    profiles = load_profiles(profiles_path) if profiles_path is not None else None
    hardware = load_hardware(hardware_path) if hardware_path is not None else None

    if app_spec == "ocr" and adapter_path is None:
        from harpagon.serving.ocr import OcrAdapter

        if profiles is None:
            from harpagon.profiling.ocr import ensure_local_profiles

            profiles, hardware = ensure_local_profiles()
        return OcrAdapter(), profiles, hardware
    if app_spec == "toy" and adapter_path is None:
        from harpagon.serving.toy import ToyAdapter, toy_hardware, toy_profiles

        if profiles is None:
            profiles, hardware = toy_profiles(), toy_hardware()
        return ToyAdapter(), profiles, hardware
    if adapter_path is None:
        raise ConfigError(
            f"--app {app_spec}: an application file needs --adapter module:Class, the AppAdapter "
            "that decodes its requests; or use --app ocr or --app toy"
        )

    module_path, _, class_name = adapter_path.partition(":")
    try:
        adapter_class = getattr(importlib.import_module(module_path), class_name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"--adapter {adapter_path}: cannot import it ({err}); use module:Class") from err
    application = load_application(app_spec) if app_spec not in ("ocr", "toy") else None
    adapter = adapter_class(application=application) if application is not None else adapter_class()
    return adapter, profiles, hardware


@app.command("serve")
@friendly_errors
def serve_command(
    plan_path: str = typer.Argument(..., help="Plan JSON file, as written by harpagon plan."),
    app_spec: str = typer.Option(
        "ocr", "--app",
        help="Application to serve: ocr, toy, or an application YAML file (with --adapter).",
    ),
    adapter_path: str = typer.Option(
        None, "--adapter",
        help="AppAdapter class as module:Class, built with application=<the YAML application>.",
    ),
    profiles_path: str = typer.Option(
        None, "--profiles",
        help="Profiles the plan was made with (directory, YAML or CSV). Default for ocr: this "
        "machine's measured OCR profiles; otherwise the plan is not re-validated.",
    ),
    hardware_path: str = typer.Option(None, "--hardware", help="Hardware catalog YAML the plan was made with."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port; 0 picks a free one."),
    backend: str = typer.Option("local", "--backend", help="Where workers run: local (processes) or ray."),
    address: str = typer.Option(None, "--address", help="Address of an existing Ray cluster (ray backend)."),
    dispatch: str = typer.Option(
        "planned", "--dispatch", help="Dispatch policy: planned, batch_aware or round_robin."
    ),
    clock: str = typer.Option(
        "capacity", "--clock",
        help="Batch clocks: capacity (each group collects at its capacity, padding the rest; "
        "lower latency, same cost) or planned (the plan's own collection rates).",
    ),
    max_backlog_ms: float = typer.Option(
        None, "--max-backlog-ms", min=0,
        help="Reject (503) a request that would wait longer than this, in ms, because requests "
        "arrive faster than the planned rate. Default: the SLO.",
    ),
    max_in_flight: int = typer.Option(
        None, "--max-in-flight", min=1,
        help="Reject (503) requests beyond this many in flight. Default: 2 x planned rate x "
        "(SLO + backlog limit), plus one.",
    ),
) -> None:
    """Serve a plan over HTTP (KServe v2 protocol) until Ctrl-C, which drains and stops."""
    import logging

    from harpagon.model.plan import load_plan
    from harpagon.serving.server import ServingOptions, serve_plan

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    plan = load_plan(plan_path)
    adapter, profiles, hardware = _serving_inputs(app_spec, adapter_path, profiles_path, hardware_path)
    options = ServingOptions(
        max_backlog_ms=max_backlog_ms, max_in_flight=max_in_flight, dispatch=dispatch, clock=clock
    )
    serve_plan(
        plan, adapter, host=host, port=port, backend=backend, profiles=profiles,
        hardware=hardware, address=address, options=options,
    )


# --- bench ------------------------------------------------------------------------------


@app.command("bench")
@friendly_errors
def bench_command(
    url: str = typer.Option("http://127.0.0.1:8000", "--url", help="Base URL of the KServe v2 server."),
    app_name: str = typer.Option("ocr", "--app", help="Model (application) name on the server."),
    rate: float = typer.Option(..., "--rate", help="Mean request rate, req/s."),
    duration_s: float = typer.Option(30.0, "--duration", help="Length of the load, s."),
    arrivals: str = typer.Option(
        "uniform", "--arrivals",
        help="Arrival process: uniform, poisson, mmpp (two-state bursts, same mean rate) "
        "or trace:PATH (recorded timestamps scaled to the rate).",
    ),
    images: str = typer.Option(
        None, "--images",
        help="Folder of image files sent in turn (PNG, JPEG ...). Default: the bundled sample images.",
    ),
    slo_ms: float = typer.Option(
        None, "--slo-ms",
        help="Latency SLO, ms. Default: parameters.slo_ms of the server's model metadata, if any.",
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed of the arrival process."),
    json_path: str = typer.Option(None, "--json", help="Also write the report as JSON to this file."),
    max_in_flight: int = typer.Option(
        1024, "--max-in-flight",
        help="Most pending requests; a request scheduled beyond it is dropped and counted as an error.",
    ),
    timeout_s: float = typer.Option(60.0, "--timeout", help="Per-request timeout, s."),
) -> None:
    """Load a KServe v2 server open-loop and report throughput, latency and SLO attainment."""
    from harpagon.serving.loadgen import (
        build_schedule,
        check_bench_options,
        load_requests,
        print_report,
        run_bench,
        write_report,
    )

    check_bench_options(rate=rate, duration_s=duration_s, slo_ms=slo_ms, timeout_s=timeout_s)
    _check_output_path(json_path, "--json")
    requests = load_requests(images)
    schedule = build_schedule(arrivals, rate=rate, duration_s=duration_s, seed=seed)
    report = run_bench(
        url, app_name, requests, schedule, duration_s=duration_s, slo_ms=slo_ms,
        max_in_flight=max_in_flight, timeout_s=timeout_s,
        extra={"arrivals": arrivals, "rate_rps": rate, "seed": seed},
    )
    print_report(report, console)
    if json_path is not None:
        write_report(report, json_path)
        err_console.print(f"wrote {json_path}")


# --- demo -------------------------------------------------------------------------------


@app.command("demo")
@friendly_errors
def demo_command(
    rate: float = typer.Option(
        None, "--rate", help="Application rate, req/s. Default: the shipped ocr application's rate."
    ),
    duration_s: float = typer.Option(30.0, "--duration", help="Length of the measured load, s."),
    json_path: str = typer.Option(
        None, "--json", help='Also write {"planned": ..., "measured": ...} as JSON to this file.'
    ),
    port: int = typer.Option(0, "--port", help="Port of the demo server on 127.0.0.1; 0 picks a free one."),
    policy: str = typer.Option("harpagon", "--policy", help="Planner that makes the plan."),
    statistic: str = typer.Option(
        "p99", "--statistic", help="Profile statistic to plan on: p99 or mean."
    ),
) -> None:
    """Profile the OCR models here, plan, serve and load the ocr app; print planned vs measured."""
    import json
    import logging

    from harpagon.serving.demo import print_demo, run_demo

    _check_positive(rate, "--rate", "req/s")
    _check_positive(duration_s, "--duration", "s")
    _check_output_path(json_path, "--json")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)
    result = run_demo(rate=rate, duration_s=duration_s, port=port, policy=policy, statistic=statistic)
    print_demo(result, console)
    if json_path is not None:
        with open(json_path, "w") as handle:
            json.dump(result.to_dict(), handle, indent=1)
            handle.write("\n")
        err_console.print(f"wrote {json_path}")


def main() -> None:
    """Entry point for ``python -m harpagon``."""
    app()


if __name__ == "__main__":
    main()
