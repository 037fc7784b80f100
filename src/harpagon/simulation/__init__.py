"""Discrete-event simulation of a plan: arrival processes, the run in virtual time, reports.

Times in ms, rates in req/s. The simulator drives the dispatchers of
:mod:`harpagon.dispatch`, so what it measures is what the runtime's dispatcher does.
"""

from harpagon.simulation.arrivals import (
    ARRIVAL_KINDS,
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
from harpagon.simulation.engine import FANOUT_KINDS, ModuleRun, SimulationRun, simulate
from harpagon.simulation.report import render, summarize

__all__ = [
    "ARRIVAL_KINDS", "FANOUT_KINDS", "MAX_ARRIVALS", "MmppParameters", "ModuleRun",
    "SimulationRun", "check_arrival_count", "make_arrivals", "mmpp_arrivals",
    "poisson_arrivals", "read_trace", "render", "simulate", "summarize", "trace_arrivals",
    "uniform_arrivals",
]
