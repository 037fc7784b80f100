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


def main() -> None:
    """Entry point for ``python -m harpagon``."""
    app()


if __name__ == "__main__":
    main()
