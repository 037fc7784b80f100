"""Helpers for the simulator tests: a hand-computed two-module plan and random applications."""

from __future__ import annotations

from hypothesis import strategies as st

from harpagon.model import (
    Application,
    HardwareCatalog,
    HardwareType,
    Module,
    Profile,
    ProfileSet,
    make_group,
    make_module_plan,
    make_plan,
)

HARDWARE = HardwareCatalog({"t4": HardwareType("t4", 0.5), "v100": HardwareType("v100", 2.0)})
PROFILES = ProfileSet(
    {
        "det": Profile("det", {"t4": {1: 10.0, 4: 20.0}, "v100": {1: 5.0, 8: 20.0}}),
        "cls": Profile("cls", {"t4": {1: 2.0, 8: 8.0}, "v100": {8: 4.0}}),
    }
)
# A detector feeding a classifier with 2 requests per frame, at 100 frames per second.
APP = Application(
    name="pipeline",
    rate=100.0,
    slo_ms=200.0,
    modules=(
        Module("det", "det", overhead_ms=2.0),
        Module("cls", "cls", overhead_ms=1.0, rate_factor=2.0),
    ),
    edges=(("det", "cls"),),
)


def hand_plan():
    """Return the plan: det on 1 x v100 at b = 8 (period 80 ms, latency 102 ms); cls on
    1 x t4 at b = 8 with 200 real + 200 dummy req/s (period 20 ms, latency 29 ms plus 5 ms
    of shaping). End to end 136 ms."""
    det = make_group(
        hardware="v100", batch_size=8, workers=1, rate=100.0, dummy_rate=0.0,
        dispatch="batch_aware", overhead_ms=2.0, batch_latency_ms=20.0,
    )
    cls = make_group(
        hardware="t4", batch_size=8, workers=1, rate=200.0, dummy_rate=200.0,
        dispatch="batch_aware", overhead_ms=1.0, batch_latency_ms=8.0,
    )
    modules = [
        make_module_plan(APP, "det", [det], HARDWARE, budget_ms=110.0),
        make_module_plan(APP, "cls", [cls], HARDWARE, budget_ms=90.0),
    ]
    return make_plan(APP, modules, HARDWARE, policy="hand", planning_ms=0.0)


@st.composite
def random_cases(draw):
    """Draw (app, profiles, hardware) like the planner property tests: 1 to 4 modules,
    fan-out factors 0.5, 1, 2 and 2.5, a random DAG, one or two hardware types."""
    hardware_names = ["h0", "h1"][: draw(st.integers(1, 2))]
    prices = {h: draw(st.sampled_from([0.4, 0.7, 1.0, 1.6, 2.5])) for h in hardware_names}

    # Modules: profiles d(b) = base + per_request * b on some of the hardware types.
    num_modules = draw(st.integers(1, 4))
    table = {}
    modules = []
    for i in range(num_modules):
        by_hw = {}
        for h in hardware_names:
            if by_hw and not draw(st.booleans()):
                continue
            base = draw(st.floats(1.0, 15.0))
            per_request = draw(st.floats(0.2, 3.0))
            sizes = draw(st.sets(st.sampled_from([1, 2, 4, 8, 16, 32]), min_size=1, max_size=3))
            by_hw[h] = {b: base + per_request * b for b in sorted(sizes)}
        table[f"p{i}"] = Profile(f"p{i}", by_hw)
        overhead = draw(st.sampled_from([0.0, 1.0, 2.5]))
        factor = draw(st.sampled_from([0.5, 1.0, 2.0, 2.5]))
        modules.append(Module(f"m{i}", f"p{i}", overhead, factor))

    # A random DAG: every forward edge is present or not.
    edges = tuple(
        (f"m{i}", f"m{j}")
        for i in range(num_modules)
        for j in range(i + 1, num_modules)
        if draw(st.booleans())
    )
    app = Application(
        name="random", rate=draw(st.floats(1.0, 300.0)), slo_ms=draw(st.floats(20.0, 400.0)),
        modules=tuple(modules), edges=edges,
    )
    hardware = HardwareCatalog({h: HardwareType(h, p) for h, p in prices.items()})
    return app, ProfileSet(table), hardware


@st.composite
def split_rate_cases(draw):
    """Draw (app, profiles, hardware) whose rate lies a little above a multiple of a worker's
    throughput, where a main group plus a small residual group tends to be cheapest."""
    prices = {"h0": 1.0, "h1": draw(st.sampled_from([0.3, 0.5, 0.8, 1.5]))}
    latencies = {
        "h0": {b: 4.0 + draw(st.floats(0.3, 1.0)) * b for b in (8, 16, 32)},
        "h1": {b: 2.0 + draw(st.floats(0.5, 3.0)) * b for b in (1, 2, 4, 8)},
    }
    throughput = 1000.0 * 32 / latencies["h0"][32]
    rate = (draw(st.integers(1, 3)) + draw(st.floats(0.02, 0.6))) * throughput
    factor = draw(st.sampled_from([0.5, 1.0, 2.0, 2.5]))
    modules = [Module("m0", "p", 1.0, 1.0)]
    edges: tuple[tuple[str, str], ...] = ()
    if draw(st.booleans()):
        modules.append(Module("m1", "p", 0.0, factor))
        edges = (("m0", "m1"),)
    app = Application(
        name="split", rate=rate / factor if len(modules) > 1 else rate,
        slo_ms=draw(st.floats(40.0, 300.0)), modules=tuple(modules), edges=edges,
    )
    hardware = HardwareCatalog({h: HardwareType(h, p) for h, p in prices.items()})
    return app, ProfileSet({"p": Profile("p", latencies)}), hardware
