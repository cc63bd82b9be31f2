"""Leases: which process holds a staging folder or a forecast number, and is it alive?

A publisher on another host (shared storage such as NFS) or in another PID namespace (a
container) cannot be checked with a local PID: its PID means nothing here. So liveness is a
heartbeat. The holder of a lease file refreshes its modification time every
:data:`HEARTBEAT_S` seconds from a background thread, and anyone may treat a lease not
refreshed for :data:`STALE_AFTER_S` as abandoned. The file also records the holder's host,
boot, PID namespace, PID and process start time: when the holder shares our host, boot
and PID namespace, a dead PID (or a PID reused by a younger process) proves the lease
abandoned at once, so a killed export is cleaned up by the next one; otherwise they serve
diagnostics. Ages are measured on the storage's own clock (:func:`storage_now`), so the
clocks of different hosts need not agree.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

HEARTBEAT_S = 30.0
STALE_AFTER_S = 900.0  # 30 missed heartbeats: generous for NFS outages and busy hosts


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> int:
    """Start time of process ``pid`` in clock ticks after boot (Linux), 0 if unknown; with
    the PID it identifies a process even after its PID is reused."""
    stat = _read(f"/proc/{pid}/stat")
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return 0


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


@dataclass(frozen=True)
class Owner:
    """Who holds a lease."""

    host: str
    boot_id: str
    pid_namespace: int
    pid: int
    start_ticks: int
    token: str

    @classmethod
    def me(cls) -> Owner:
        pid = os.getpid()
        return cls(socket.gethostname(), _read("/proc/sys/kernel/random/boot_id"),
                   _pid_namespace(), pid, _start_ticks(pid), uuid.uuid4().hex)

    def local(self) -> bool:
        """Same host, boot and PID namespace as this process: its PID can be checked."""
        return (bool(self.boot_id) and self.pid_namespace != 0
                and (self.host, self.boot_id, self.pid_namespace)
                == (socket.gethostname(), _read("/proc/sys/kernel/random/boot_id"),
                    _pid_namespace()))

    def alive(self) -> bool:
        """Whether the process still runs (meaningful only when :meth:`local`)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return self.start_ticks in (0, _start_ticks(self.pid))

    def __str__(self) -> str:
        return f"process {self.pid} on host {self.host!r}"


def storage_now(folder: Path) -> float:
    """The current time on the clock of the file system holding ``folder`` (the mtime of a
    file just created there), so ages of files written by other hosts are comparable."""
    fd, name = tempfile.mkstemp(prefix=".clock-", suffix=".tmp", dir=folder)
    try:
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)
        os.unlink(name)


class Lease:
    """A lease file held by this process and refreshed by a heartbeat until released."""

    def __init__(self, path: Path, owner: Owner) -> None:
        self.path, self.owner = Path(path), owner

    @classmethod
    def acquire(cls, path: Path, *, take_over: bool = False) -> Lease:
        """Create the lease file at ``path``; raises FileExistsError if there is one
        (an exclusive create, which works on NFS too), unless ``take_over``: then it
        replaces it (the caller has judged it abandoned)."""
        lease = cls(path, Owner.me())
        text = json.dumps(asdict(lease.owner))
        if take_over:
            fd, tmp = tempfile.mkstemp(prefix=f".{lease.path.name}.", suffix=".tmp",
                                       dir=lease.path.parent)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, lease.path)
        else:
            fd = os.open(lease.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        _keeper.add(lease)
        return lease

    def held(self) -> bool:
        """Whether the file still names this lease (not released, not taken over), in
        the process that acquired it (not in a forked child)."""
        return self.owner.pid == os.getpid() and read_owner(self.path) == self.owner

    def refresh(self) -> None:
        os.utime(self.path)

    def release(self) -> None:
        """Stop refreshing and remove the file if it is still ours."""
        _keeper.discard(self)
        if self.held():
            self.path.unlink(missing_ok=True)


def read_owner(path: Path) -> Owner | None:
    """The owner recorded in a lease file; None if missing or unreadable (being written)."""
    try:
        return Owner(**json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def stale(lease: Path, now: float, fallback: Path | None = None) -> bool:
    """Whether the lease file is abandoned: its owner is provably dead (same host and PID
    namespace, PID gone) or it was not refreshed for :data:`STALE_AFTER_S`.

    Without a lease file, the age of ``fallback`` (the folder the lease guards, which is
    touched whenever a file is created in it) decides; without either, it is stale.
    """
    owner = read_owner(lease)
    if owner is not None and owner.local():
        return not owner.alive()
    ages = []
    for path in (lease, fallback):
        try:
            ages.append(now - os.stat(path).st_mtime)
        except (OSError, TypeError):
            continue
    return not ages or min(ages) > STALE_AFTER_S


class _Keeper:
    """The heartbeat: one daemon thread refreshing every lease this process holds."""

    def __init__(self) -> None:
        self.leases: dict[int, Lease] = {}
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def add(self, lease: Lease) -> None:
        with self.lock:
            self.leases[id(lease)] = lease
            if self.thread is None:
                self.thread = threading.Thread(target=self._beat, name="lease-heartbeat",
                                               daemon=True)
                self.thread.start()

    def discard(self, lease: Lease) -> None:
        with self.lock:
            self.leases.pop(id(lease), None)

    def _beat(self) -> None:
        while True:
            threading.Event().wait(HEARTBEAT_S)
            with self.lock:
                leases = list(self.leases.values())
            for lease in leases:
                try:
                    lease.refresh()
                except OSError:  # removed or taken over: the holder finds out at commit
                    self.discard(lease)

    def forget(self) -> None:
        """In a forked child: the parent's leases and thread are not ours."""
        self.leases.clear()
        self.lock = threading.Lock()
        self.thread = None


_keeper = _Keeper()
os.register_at_fork(after_in_child=_keeper.forget)
