"""A process group the local stack started, as recorded in its pid file, and how to stop one for good."""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.error
import urllib.request
from contextlib import suppress
from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    """One running process group of the stack, as stored in its pid file."""

    name: str
    pid: int
    started: float
    url: str = ""
    probe: str = ""
    log: str = ""

    def alive(self) -> bool:
        """Whether the recorded process still runs (same pid and start time, not a zombie)."""
        import psutil

        try:
            proc = psutil.Process(self.pid)
            return bool(abs(proc.create_time() - self.started) < 1 and proc.status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return False

    def healthy(self) -> bool:
        """Alive, and its health URL (if any) answers 2xx."""
        return self.alive() and (not self.probe or http_ok(self.probe))


def http_ok(url: str) -> bool:
    """Whether ``GET url`` answers with a 2xx status within 5 s."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):
        return False


def port_taken(port: int) -> bool:
    """Whether something listens on ``127.0.0.1:port``."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_time(pid: int) -> float:
    """When process ``pid`` started (seconds since the epoch), to tell it from a later one with its pid."""
    import psutil

    return float(psutil.Process(pid).create_time())


def describe(svc: Service | None) -> str:
    """``running (pid N)``, ``not answering``, ``exited`` or ``not running``."""
    if svc is None:
        return "not running"
    if not svc.alive():
        return "exited"
    return f"running (pid {svc.pid})" if svc.healthy() else f"not answering (pid {svc.pid})"


def _signal(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pgid: int, deadline: float) -> bool:
    """Wait for every process of the group to exit; SIGKILL what is left at ``deadline``; True if it took that."""
    while _group_exists(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not _group_exists(pgid):
        return False
    _signal(pgid, signal.SIGKILL)
    for _ in range(50):  # a killed process is gone once its parent (init, here) has reaped it
        if not _group_exists(pgid):
            break
        time.sleep(0.2)
    return True


def stop_groups(pgids: list[int], grace: float = 30) -> list[int]:
    """SIGTERM each process group, wait up to ``grace`` seconds for all to exit, SIGKILL what is left.

    Returns the groups that had to be killed.
    """
    for pgid in pgids:
        _signal(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    return [pgid for pgid in pgids if _wait_gone(pgid, deadline)]
