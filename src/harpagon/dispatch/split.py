"""The weighted split of a module's shaped requests across its targets (groups or workers).

Request ``k`` (0-based, in shaping order) goes to the target with the largest deficit
``share * (k + 1) - assigned``, ties to the lower index. Each target then stays within one
request of its share at every prefix of the stream. The choice depends on ``k`` only, so
:func:`split_targets` computes a whole stream at once and :class:`Splitter` one request at
a time, with the same floating-point operations.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Splitter", "split_targets"]

TIE_TOL = 1e-9
"""Deficits closer than this count as equal, so rounding in ``share * (k + 1)`` cannot
turn an exact tie (such as shares 4/9 and 1/9 at k = 5) away from the lower index."""


def _is_uniform(shares: tuple[float, ...]) -> bool:
    return all(share == shares[0] for share in shares)


class Splitter:
    """The split of one module, one request at a time.

    Parameters
    ----------
    shares : tuple of float
        Fraction of the module's requests each target carries. They should add up to 1.

    Notes
    -----
    Equal shares reduce to plain rotation ``k mod T``. With two targets the deficit rule
    is equivalent (in exact arithmetic, for shares adding up to 1) to: target 0 takes
    request ``k`` iff ``floor(s0 (k + 1) + 1/2) > floor(s0 k + 1/2)``. That closed form is
    used so the vectorised path computes the same bits. Both forms treat values within
    :data:`TIE_TOL` of a tie as a tie. Other cases compare the deficits
    in O(targets) per request.
    """

    def __init__(self, shares: tuple[float, ...]) -> None:
        if not shares:
            raise ValueError("a split needs at least one target, got none")
        self.shares = tuple(float(share) for share in shares)
        self.assigned = [0] * len(shares)
        self._uniform = _is_uniform(self.shares)

    def target(self, k: int) -> int:
        """Return the target of request ``k``, for ``k = 0, 1, ...`` in order."""
        shares = self.shares
        if self._uniform:
            choice = k % len(shares)
        elif len(shares) == 2:
            first = shares[0]
            after = math.floor(first * (k + 1) + 0.5 + TIE_TOL)
            choice = 0 if after > math.floor(first * k + 0.5 + TIE_TOL) else 1
        else:
            choice = 0
            best = shares[0] * (k + 1) - self.assigned[0]
            for index in range(1, len(shares)):
                deficit = shares[index] * (k + 1) - self.assigned[index]
                if deficit > best + TIE_TOL:
                    best = deficit
                    choice = index
        self.assigned[choice] += 1
        return choice


def split_targets(shares: tuple[float, ...], count: int) -> np.ndarray:
    """Return the target of each of the first ``count`` requests, as :class:`Splitter` does.

    Examples
    --------
    >>> split_targets((0.5, 0.5), 4).tolist()
    [0, 1, 0, 1]
    >>> split_targets((0.75, 0.25), 4).tolist()
    [0, 0, 1, 0]
    """
    shares = tuple(float(share) for share in shares)
    if _is_uniform(shares):
        return np.arange(count, dtype=np.int64) % len(shares)
    if len(shares) == 2:
        steps = np.floor(shares[0] * np.arange(count + 1, dtype=np.float64) + 0.5 + TIE_TOL)
        return np.where(np.diff(steps) > 0, 0, 1).astype(np.int64)
    splitter = Splitter(shares)
    return np.fromiter((splitter.target(k) for k in range(count)), dtype=np.int64, count=count)
