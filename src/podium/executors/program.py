"""Which program a shell task or a service runs: ``argv[0]`` if the user granted it, found on
this process's ``PATH``.

Invariants: nothing runs that the policy does not allow (checked here again, when the task
runs: a parameter may have chosen it); a ``PATH`` in the task's own env cannot redirect the
lookup; variables that make programs load other code are refused. Imports only leaves.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import Any

from podium.errors import USER_ERROR
from podium.executors.failure import failure
from podium.policy import Policy, env_key_problem, program_refusal


def granted_program(
    task_id: str, args: list[str], env: Mapping[str, Any], policy: Policy, what: str = "shell task"
) -> str:
    """The executable for ``args[0]`` if the policy allows it: a bare name is looked up on this
    process's PATH (a ``PATH`` in the task's env cannot redirect it)."""
    name = args[0]
    if not policy.program_allowed(name):
        raise failure(
            USER_ERROR, "NotAllowed", f"{what} {task_id!r}: {program_refusal(name)}", retryable=False
        )
    for k in env:
        why = env_key_problem(k)
        if why is not None:
            raise failure(USER_ERROR, "NotAllowed", f"{what} {task_id!r}: {why}", retryable=False)
    if os.sep in name or "\x00" in name:
        return name
    found = shutil.which(name, path=os.environ.get("PATH", os.defpath))
    if found is None:
        raise failure(
            USER_ERROR,
            "FileNotFoundError",
            f"{what} {task_id!r}: command {name!r} not found",
            retryable=False,
        )
    return found
