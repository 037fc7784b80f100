"""Backends that run the workers of a plan: ``local`` (processes here) and ``ray`` (Ray actors).

:func:`make_backend` maps a backend name to its class; every backend builds a
:class:`~harpagon.serving.workers.WorkerPool` and releases what it started on ``close``.
"""

from __future__ import annotations

from harpagon.errors import ConfigError
from harpagon.serving.backends.local import Backend, LocalBackend

__all__ = ["BACKENDS", "Backend", "LocalBackend", "make_backend"]

BACKENDS = ("local", "ray")
"""Names accepted by :func:`make_backend` and ``harpagon serve --backend``."""


def make_backend(name: str, *, address: str | None = None) -> Backend:
    """Return the backend called ``name``.

    Parameters
    ----------
    name : str
        ``local`` or ``ray``.
    address : str, optional
        Address of an existing Ray cluster (``ray`` only); without one a local Ray
        instance is started.

    Raises
    ------
    ConfigError
        If the name is unknown, or an address is given to the local backend.
    """
    if name == "local":
        if address is not None:
            raise ConfigError(
                f"--address {address!r} applies only to the ray backend; use --backend ray"
            )
        return LocalBackend()
    if name == "ray":
        from harpagon.serving.backends.ray import RayBackend

        return RayBackend(address=address)
    raise ConfigError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
