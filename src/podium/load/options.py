"""Task and parameter settings shared by both front ends (Python decorators and YAML/JSON).

Each function turns user-facing settings (``retries=3``, ``memory="2GiB"``, ``timeout="10m"``)
into the model's values and reports what is wrong as ``(key, message)`` pairs instead of
raising, so callers can attach positions and report every problem at once.
Invariant: both front ends go through these functions, so the same description gives the
same ``TaskSpec`` field values (that is what makes their Workflows compare equal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from podium.errors import FAILURE_KINDS
from podium.model.devices import request_problem
from podium.model.resources import STANDARD, Resources, parse_duration, parse_size
from podium.model.task import MAX_WORKERS, RetryPolicy

Issues = list[tuple[str, str]]

#: Upper bound of any duration (timeouts, delays, deadlines): beyond it clocks and waits overflow.
MAX_SECONDS = 365 * 86400.0
#: Most attempts a retry policy may make.
MAX_ATTEMPTS = 1000

_DEFAULT_RETRY = RetryPolicy()


def is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def duration(value: object, key: str, issues: Issues) -> float | None:
    """Seconds for a duration setting, or None when unset or malformed (malformed is reported)."""
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as e:
        issues.append((key, str(e)))
        return None
    if seconds > MAX_SECONDS:
        issues.append((key, f"at most 365 days, got {value!r}"))
        return None
    return seconds


def resources(amounts: Mapping[str, Any], issues: Issues) -> Resources:
    """``{"cpu": 2, "memory": "2GiB", "gpu": 0.5, "gpu_memory": "8GiB", "tpu": 1}`` -> Resources;
    unknown keys are custom. A gpu request is a share of one GPU (below 1) or whole GPUs."""
    cpu, gpu, memory, gpu_memory = 1.0, 0.0, 0, 0
    custom: dict[str, float] = {}
    for k, v in amounts.items():
        if k in ("memory", "gpu_memory"):
            try:
                size = parse_size(v)
            except ValueError as e:
                issues.append((k, str(e)))
                continue
            if k == "memory":
                memory = size
            else:
                gpu_memory = size
        elif not is_number(v) or v < 0:
            issues.append((k, f"expected a non-negative number, got {v!r}"))
        elif k == "cpu":
            cpu = float(v)
        elif k == "gpu":
            gpu = float(v)
            problem = request_problem(gpu)
            if problem is not None:
                issues.append((k, problem))
        elif k not in STANDARD:
            custom[str(k)] = float(v)
    if gpu_memory and not gpu:
        issues.append(("gpu_memory", "gpu_memory needs a gpu request (it is memory on each GPU held)"))
    return Resources(cpu, memory, gpu, tuple(sorted(custom.items())), gpu_memory)


def workers(value: object, issues: Issues) -> int:
    """The number of workers of a gang-scheduled task (1: an ordinary task)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WORKERS:
        issues.append(("workers", f"expected a whole number from 1 to {MAX_WORKERS}, got {value!r}"))
        return 1
    return value


def retry_policy(
    attempts: object = 1,
    delay: object = _DEFAULT_RETRY.delay,
    backoff: object = _DEFAULT_RETRY.backoff,
    max_delay: object = _DEFAULT_RETRY.max_delay,
    jitter: object = _DEFAULT_RETRY.jitter,
    on: object = None,
    issues: Issues | None = None,
) -> RetryPolicy:
    """A RetryPolicy from user settings; problems go to ``issues`` keyed by setting name."""
    out: Issues = issues if issues is not None else []
    a = 1
    if isinstance(attempts, int) and not isinstance(attempts, bool) and 1 <= attempts <= MAX_ATTEMPTS:
        a = attempts
    elif isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > MAX_ATTEMPTS:
        out.append(("attempts", f"at most {MAX_ATTEMPTS}, got {attempts!r}"))
    else:
        out.append(("attempts", f"expected a whole number >= 1, got {attempts!r}"))
    d = duration(delay, "delay", out)
    md = duration(max_delay, "max_delay", out)
    b = _DEFAULT_RETRY.backoff
    if is_number(backoff) and backoff >= 1:  # type: ignore[operator]
        b = float(backoff)  # type: ignore[arg-type]
        if a > 2 and (a - 2) * math.log10(b) > 300:  # the delay before the last try overflows
            out.append(
                ("backoff", f"backoff {b:g} to the power of {a - 2} overflows: lower backoff or attempts")
            )
            b = _DEFAULT_RETRY.backoff
    else:
        out.append(("backoff", f"expected a number >= 1, got {backoff!r}"))
    j = _DEFAULT_RETRY.jitter
    if is_number(jitter) and 0 <= jitter <= 1:  # type: ignore[operator]
        j = float(jitter)  # type: ignore[arg-type]
    else:
        out.append(("jitter", f"expected a fraction between 0 and 1, got {jitter!r}"))
    kinds = _DEFAULT_RETRY.retry_on
    if on is not None:
        if isinstance(on, str):
            on = [on]
        if not isinstance(on, list | tuple) or not all(isinstance(k, str) for k in on):
            out.append(("on", f"expected a list of failure kinds ({', '.join(FAILURE_KINDS)})"))
        else:
            bad = [k for k in on if k not in FAILURE_KINDS]
            if bad:
                out.append(("on", f"unknown failure kind {bad[0]!r} (use {', '.join(FAILURE_KINDS)})"))
            kinds = tuple(dict.fromkeys(k for k in on if k in FAILURE_KINDS))
    return RetryPolicy(
        attempts=a,
        delay=_DEFAULT_RETRY.delay if d is None else d,
        backoff=b,
        max_delay=_DEFAULT_RETRY.max_delay if md is None else md,
        jitter=j,
        retry_on=kinds,
    )


def infer_param_type(default: Any) -> str:
    """The parameter type implied by a default value (``"any"`` when there is none)."""
    for t, cls in (
        ("bool", bool),
        ("int", int),
        ("float", float),
        ("str", str),
        ("list", list),
        ("dict", dict),
    ):
        if isinstance(default, cls):
            return t
    if isinstance(default, tuple):
        return "list"
    return "any"


def normalize_http(method: object, issues: Issues) -> str:
    if not isinstance(method, str) or not method.strip().isalpha():
        issues.append(("method", f"expected an HTTP method such as GET or POST, got {method!r}"))
        return "GET"
    return method.strip().upper()


def argv_item(value: Any) -> Any:
    """Numbers in a shell argv become strings (argv is text); everything else is kept."""
    return str(value) if is_number(value) else value
