"""The comparison figure: cost ratios per policy, and cost against SLO for one application.

Rendered with matplotlib's Agg backend, so it needs no display. Costs in USD/h, SLOs in ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

from harpagon.evaluation.comparison import REFERENCE, Outcome  # noqa: E402

__all__ = ["plot_comparison"]


def _ratios(outcomes: Sequence[Outcome], policy: str) -> list[float]:
    reference = {
        o.workload: o.cost_per_hour for o in outcomes if o.policy == REFERENCE and o.valid
    }
    return [
        o.cost_per_hour / reference[o.workload]
        for o in outcomes
        if o.policy == policy and o.valid and o.workload in reference
    ]


def plot_comparison(
    outcomes: Sequence[Outcome],
    policies: Sequence[str],
    path: str | Path,
    *,
    app_name: str | None = None,
    rate: float | None = None,
) -> Path:
    """Write a two-panel PNG to ``path`` and return the path.

    Left: the distribution of each policy's cost over harpagon's, per workload where both
    are valid. Right: cost against SLO for ``app_name`` (default: the first standard-suite
    application) at ``rate`` req/s (default: the median of its workloads' rates).
    """
    path = Path(path)
    others = [p for p in policies if p != REFERENCE]
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 5))

    # 1. Cost ratio boxes, one per policy.
    data = [_ratios(outcomes, p) or [float("nan")] for p in others]
    left.boxplot(data, showfliers=True)
    left.set_xticks(range(1, len(others) + 1), others, rotation=30, ha="right")
    left.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    left.set_yscale("log")
    left.set_ylabel(f"cost / {REFERENCE} cost")
    left.set_title(f"Cost relative to {REFERENCE} ({len({o.workload for o in outcomes})} workloads)")

    # 2. Cost against SLO for one application at one rate.
    standard = [o for o in outcomes if o.suite == "standard"]
    if app_name is None and standard:
        app_name = standard[0].app
    chosen = [o for o in standard if o.app == app_name]
    if chosen:
        rates = sorted({o.rate for o in chosen})
        if rate is None or rate not in rates:
            rate = rates[len(rates) // 2]
        markers = "os^vD<>px*"
        for index, policy in enumerate(policies):
            points = sorted(
                (o.slo_ms, o.cost_per_hour)
                for o in chosen
                if o.policy == policy and o.rate == rate and o.valid
            )
            if not points:
                continue
            slos, costs = zip(*points, strict=True)
            # Lines overlap where policies agree: the reference goes on top, in black.
            style = (
                {"color": "black", "linewidth": 2.5, "zorder": 10}
                if policy == REFERENCE else {"linewidth": 1.2, "alpha": 0.8}
            )
            right.plot(slos, costs, marker=markers[index % len(markers)], label=policy, **style)
        right.set_title(f"{app_name} at {rate:g} req/s")
        right.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    right.set_xlabel("SLO (ms)")
    right.set_ylabel("cost (USD/h)")

    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
