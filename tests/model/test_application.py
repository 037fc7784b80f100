"""Tests of the application DAG: order, cycles, paths, start offsets and the critical path."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harpagon.errors import ConfigError
from harpagon.model import Application, Module


def make_app(names: list[str], edges: list[tuple[str, str]], **fields) -> Application:
    modules = tuple(Module(name, profile="resnet") for name in names)
    return Application(
        name=fields.pop("name", "test"),
        rate=fields.pop("rate", 100.0),
        slo_ms=fields.pop("slo_ms", 500.0),
        modules=modules,
        edges=tuple(edges),
        **fields,
    )


# A diamond with a tail: a -> {b, c} -> d -> e.
DIAMOND = make_app(
    ["e", "d", "c", "b", "a"],
    [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e")],
)


def test_topological_order_respects_edges():
    order = DIAMOND.topological_order

    assert sorted(order) == ["a", "b", "c", "d", "e"]
    for source, target in DIAMOND.edges:
        assert order.index(source) < order.index(target), (source, target)
    assert order[0] == "a"
    assert order[-1] == "e"


def test_sources_and_sinks():
    assert DIAMOND.sources == ["a"]
    assert DIAMOND.sinks == ["e"]
    assert sorted(DIAMOND.predecessors("d")) == ["b", "c"]
    assert sorted(DIAMOND.successors("a")) == ["b", "c"]


def test_cycle_named_in_error():
    with pytest.raises(ConfigError, match=r"the module graph has a cycle: b -> c -> d -> b; remove one"):
        make_app(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "d"), ("d", "b")])


def test_two_module_cycle():
    with pytest.raises(ConfigError, match=r"cycle: (x -> y -> x|y -> x -> y)"):
        make_app(["x", "y"], [("x", "y"), ("y", "x")])


def test_self_loop_rejected():
    with pytest.raises(ConfigError, match=r"edge \[a, a\] is a self-loop"):
        make_app(["a"], [("a", "a")])


def test_duplicate_module_names_rejected():
    with pytest.raises(ConfigError, match=r"duplicate module names: a"):
        make_app(["a", "b", "a"], [])


def test_empty_application_rejected():
    with pytest.raises(ConfigError, match=r"application 'test' has no modules"):
        make_app([], [])


def test_nonpositive_slo_rejected():
    with pytest.raises(ConfigError, match=r"field 'slo_ms' must be > 0 ms, got 0"):
        make_app(["a"], [], slo_ms=0)


def test_negative_overhead_rejected():
    with pytest.raises(ConfigError, match=r"module 'a': field 'overhead_ms' must be >= 0, got -1"):
        Application("test", 100.0, 500.0, (Module("a", "resnet", overhead_ms=-1),))


def test_unknown_module_lookup():
    with pytest.raises(ConfigError, match=r"application 'test' has no module 'z'"):
        DIAMOND.module("z")


def test_paths_of_diamond():
    paths = sorted(DIAMOND.paths())

    assert paths == [["a", "b", "d", "e"], ["a", "c", "d", "e"]]


def test_paths_of_forest():
    app = make_app(["a", "b", "c"], [("a", "b")])

    assert sorted(app.paths()) == [["a", "b"], ["c"]]


def test_module_rate_uses_rate_factor():
    app = Application(
        "traffic", 300.0, 400.0,
        (Module("detector", "ssd"), Module("classifier", "resnet", rate_factor=2.5)),
        (("detector", "classifier"),),
    )

    assert app.module_rate("detector") == 300.0
    assert app.module_rate("classifier") == 750.0


def test_start_offsets_take_longest_parent():
    latency_ms = {"a": 10.0, "b": 30.0, "c": 5.0, "d": 7.0, "e": 1.0}

    start_ms = DIAMOND.start_offsets_ms(latency_ms)

    assert start_ms == {"a": 0.0, "b": 10.0, "c": 10.0, "d": 40.0, "e": 47.0}


def test_critical_path_picks_slow_branch():
    latency_ms = {"a": 10.0, "b": 30.0, "c": 5.0, "d": 7.0, "e": 1.0}

    total_ms, path = DIAMOND.critical_path(latency_ms)

    assert total_ms == 48.0
    assert path == ["a", "b", "d", "e"]


def test_critical_path_switches_branch():
    latency_ms = {"a": 10.0, "b": 1.0, "c": 50.0, "d": 7.0, "e": 1.0}

    total_ms, path = DIAMOND.critical_path(latency_ms)

    assert total_ms == 68.0
    assert path == ["a", "c", "d", "e"]


def test_critical_path_over_several_sinks():
    app = make_app(["a", "b", "c"], [("a", "b"), ("a", "c")])

    total_ms, path = app.critical_path({"a": 2.0, "b": 3.0, "c": 9.0})

    assert total_ms == 11.0
    assert path == ["a", "c"]


def test_with_overrides_validates():
    app = DIAMOND.with_overrides(rate=50.0)

    assert app.rate == 50.0
    assert app.slo_ms == DIAMOND.slo_ms
    with pytest.raises(ConfigError, match=r"^rate must be > 0 req/s, got -1$"):
        DIAMOND.with_overrides(rate=-1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rate": float("inf")}, r"^rate must be a finite number of req/s, got inf$"),
        ({"rate": float("nan")}, r"^rate must be > 0 req/s, got nan$"),
        ({"slo_ms": 0.0}, r"^slo_ms must be > 0 ms, got 0.0$"),
        ({"slo_ms": float("inf")}, r"^slo_ms must be a finite number of ms, got inf$"),
    ],
)
def test_with_overrides_names_override_not_file(overrides, message):
    app = make_app(["a"], [], path="apps/traffic.yaml")
    with pytest.raises(ConfigError, match=message):
        app.with_overrides(**overrides)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rate": float("inf")}, r"app\.yaml: field 'rate' must be a finite number of req/s, got inf"),
        ({"slo_ms": float("inf")}, r"app\.yaml: field 'slo_ms' must be a finite number of ms, got inf"),
    ],
)
def test_infinite_file_values_rejected(fields, message):
    with pytest.raises(ConfigError, match=message):
        make_app(["a"], [], path="app.yaml", **fields)


@st.composite
def _dags(draw):
    # Edges only from a lower to a higher index, so the graph is acyclic by construction.
    size = draw(st.integers(min_value=1, max_value=7))
    pairs = [(i, j) for i in range(size) for j in range(i + 1, size)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True) if pairs else st.just([]))
    latency = draw(st.lists(st.floats(0.0, 100.0), min_size=size, max_size=size))
    names = [f"m{i}" for i in range(size)]
    shuffled = draw(st.permutations(names))
    edges = [(names[i], names[j]) for i, j in chosen]
    return make_app(list(shuffled), edges), dict(zip(names, latency))


@settings(max_examples=60, deadline=None)
@given(_dags())
def test_critical_path_is_longest_path(case):
    app, latency_ms = case

    total_ms, path = app.critical_path(latency_ms)
    start_ms = app.start_offsets_ms(latency_ms)

    path_totals = [sum(latency_ms[m] for m in p) for p in app.paths()]
    assert total_ms == pytest.approx(max(path_totals))
    assert sum(latency_ms[m] for m in path) == pytest.approx(total_ms)
    assert path in list(app.paths())
    for source, target in app.edges:
        assert start_ms[target] >= start_ms[source] + latency_ms[source] - 1e-9
    assert max(start_ms[m] + latency_ms[m] for m in app.sinks) == pytest.approx(total_ms)
