"""Connecting the driver to Ray: an existing cluster, the Ray this process uses, or a local one.

``connect(address, ...)`` returns whether it called ``ray.init`` (the executor then owns the
connection and ends it at shutdown). ``"local"`` starts a Ray instance on this machine: one
node labelled ``local``, no dashboard, and health checks that declare a dead node in about
5 s (``LOCAL_HEALTH``) instead of Ray's 15-30 s.

Invariants: a failed connection is one ``UsageError`` line naming the address, never Ray's
traceback; nothing is initialised when this process is already connected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podium.errors import UsageError

#: ``RayExecutor("local")`` starts a Ray instance on this machine (loopback only).
LOCAL = "local"
#: Ray's health checks of a local Ray (``"local"``): a dead node is declared in about 5 s, not 15-30 s.
LOCAL_HEALTH = {"health_check_period_ms": 1000, "health_check_failure_threshold": 5}


def connect(
    ray: Any,
    address: str | None,
    label: str,
    init: Mapping[str, Any] | None = None,
    runtime_env: Mapping[str, Any] | None = None,
) -> bool:
    """Connect ``ray`` (the module) to ``address`` (``"host:port"``, ``"ray://..."``, ``"auto"``;
    ``None``: ``ray.init()``), or start a local Ray (``"local"``) whose node carries ``label``;
    ``init`` adds ``ray.init`` arguments. Returns whether this call initialised Ray."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"log_to_driver": False, **dict(init or {})}
    if runtime_env:
        kwargs["runtime_env"] = dict(runtime_env)
    if address == LOCAL:  # this process's own Ray, one node named "local"
        kwargs.setdefault("include_dashboard", False)
        kwargs.setdefault("labels", {label: "local"})
        kwargs.setdefault("_system_config", LOCAL_HEALTH)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise UsageError(f"cannot connect to Ray at {address or 'auto'!r}: {first}") from None
    return True


__all__ = ["LOCAL", "LOCAL_HEALTH", "connect"]
