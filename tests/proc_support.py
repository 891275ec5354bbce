"""Process checks shared by the tests that start and kill real commands."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie, or a process reaped while we look, is dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        # Reaped between kill(0) and the read: reading a vanishing process's stat gives ESRCH.
        return False
