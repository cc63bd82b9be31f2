"""A host-wide budget of kernel threads, shared by concurrent runs through lock files.

Two forecasts on a 2-core host that each run 2 kernel threads put 4 threads on 2 cores,
and every parallel kernel's barrier then waits for whichever thread the OS has preempted.
The budget holds one token per core. A run steps with n > 1 kernel threads only while it
holds n tokens, so the multi-threaded kernels of all runs together never use more
threads than the host has cores. A run is never blocked: without tokens it steps on one
thread, which has no barrier to wait at and which the OS shares fairly with the others.

Runs take tokens for a chunk of steps (:data:`CHUNK_S`), not for the whole run, and only
their fair share: the cores divided among the runs present (the remainder to the
earliest). A forecast that starts beside a running one so gets its share within one
chunk, and a run that is left alone takes all the cores back.

The files live in one folder, ``$TSUNAMI_RUNTIME_DIR`` (default ``<tmp>/tsunami-<uid>``;
point the accounts that run forecasts on one host at the same folder to share a budget
between them):

* ``run-<k>``: held by a run while it steps; k is its place in the queue for shares;
* ``core-<k>``: one token per core, held for a chunk.

They are ``flock`` locks, which belong to the open file: the kernel drops them when their
process dies, even by SIGKILL, so a killed run never keeps tokens, and two threads of one
process lock independently. ``TSUNAMI_CORES`` sets the number of tokens (default: the
cores this process may use, :func:`tsunami.threads.available_cores`); ``0`` turns the
budget off. Nothing here can fail a run: if the folder cannot be used, the budget is off
with a warning.
"""

from __future__ import annotations

import errno
import os
import tempfile
import warnings
import weakref
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no budget
    fcntl = None

from tsunami.threads import available_cores

CHUNK_S = 0.1  # tokens are held for about this long (s), then shares are recomputed
SLOTS = 32  # runs the budget tells apart; any more step on one thread each

_open_members: weakref.WeakSet[Member] = weakref.WeakSet()


class CoreBudget:
    """The host's core tokens in ``folder``; ``cores=0`` (or no usable folder) is no
    budget: every lease gets the threads it asks for."""

    def __init__(self, folder: Path | str | None = None, cores: int | None = None) -> None:
        self.cores = available_cores() if cores is None else int(cores)
        self.folder = Path(folder) if folder is not None else default_folder()
        if self.cores > 0 and fcntl is not None:
            try:
                self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                warnings.warn(f"core budget off: cannot use {self.folder} ({exc})",
                              RuntimeWarning, stacklevel=2)
                self.cores = 0
        else:
            self.cores = 0

    @classmethod
    def from_environment(cls) -> CoreBudget:
        """The budget set by ``TSUNAMI_CORES`` and ``TSUNAMI_RUNTIME_DIR``."""
        cores = os.environ.get("TSUNAMI_CORES")
        try:
            count = int(cores) if cores else None
        except ValueError:
            warnings.warn(f"TSUNAMI_CORES={cores!r} is not a whole number: core budget off",
                          RuntimeWarning, stacklevel=2)
            count = 0
        return cls(os.environ.get("TSUNAMI_RUNTIME_DIR"), count)

    @property
    def enabled(self) -> bool:
        return self.cores > 0

    def join(self) -> Member:
        """Register a run (use as a context manager, or call :meth:`Member.close`)."""
        return Member(self)

    def _open(self, name: str) -> int | None:
        try:
            return os.open(self.folder / name, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            warnings.warn(f"core budget off: cannot open {self.folder / name} ({exc})",
                          RuntimeWarning, stacklevel=3)
            self.cores = 0
            return None


def _try_lock(fd: int, shared: bool = False) -> bool:
    """Lock the open file ``fd`` without waiting; False if another open file holds it."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        return False
    return True


class Member:
    """One run's place in a :class:`CoreBudget`: its presence while it steps, and the
    tokens it holds for the current chunk.

    The member keeps its lock files open (one per slot and token, opened on first use):
    probing and taking tokens are then plain ``flock`` calls, about a microsecond each.
    """

    def __init__(self, budget: CoreBudget) -> None:
        self.budget = budget
        self.slot: int | None = None
        self._files: dict[str, int] = {}  # open lock files by name
        self._held: list[int] = []  # core tokens held
        for k in range(SLOTS if budget.enabled else 0):
            fd = self._file(f"run-{k}")
            if fd is not None and _try_lock(fd):
                self.slot = k
                break
        _open_members.add(self)

    def __enter__(self) -> Member:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Leave the budget: closing the files drops every lock held."""
        for fd in self._files.values():
            os.close(fd)
        self._files, self._held, self.slot = {}, [], None

    def _file(self, name: str) -> int | None:
        fd = self._files.get(name)
        if fd is None:
            fd = self.budget._open(name)
            if fd is not None:
                self._files[name] = fd
        return fd

    def runs(self) -> list[int]:
        """Slots of the runs present now, this one included."""
        live = []
        for k in range(SLOTS):
            fd = self._file(f"run-{k}") if k != self.slot else None
            # A shared probe fails only against a present run's exclusive lock.
            if fd is not None and _try_lock(fd, shared=True):
                fcntl.flock(fd, fcntl.LOCK_UN)
            elif self.budget.enabled:
                live.append(k)
        return live

    def share(self) -> range:
        """The tokens this run may take now: its fair share of the cores."""
        live = self.runs()
        if self.slot is None:  # more runs than SLOTS
            return range(0)
        rank = live.index(self.slot)
        base, extra = divmod(self.budget.cores, len(live))
        start = rank * base + min(rank, extra)
        return range(start, start + base + (rank < extra))

    def acquire(self, wanted: int) -> int:
        """Take up to ``wanted`` tokens of this run's share without waiting; return the
        kernel threads the run may use: the tokens held if more than one, else 1 (then
        no token is kept: one thread needs none)."""
        self.release()
        if not self.budget.enabled:
            return max(1, wanted)
        if wanted > 1:
            for k in self.share():
                if len(self._held) == wanted:
                    break
                fd = self._file(f"core-{k}")
                if fd is not None and _try_lock(fd):
                    self._held.append(fd)
        if len(self._held) < 2:
            self.release()
            return 1
        return len(self._held)

    def release(self) -> None:
        """Return the tokens held."""
        for fd in self._held:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self._held = []

    @property
    def tokens(self) -> int:
        return len(self._held)

    @contextmanager
    def lease(self, wanted: int | None = None):
        """Run a chunk of steps with this run's share of the cores: sets Numba's threads
        (for the calling thread) to the tokens taken, at most ``wanted`` (default: Numba's
        current setting); restores the setting and returns the tokens afterwards."""
        import numba

        before = numba.get_num_threads()
        wanted = min(before if wanted is None else wanted, numba.config.NUMBA_NUM_THREADS)
        threads = self.acquire(wanted)
        numba.set_num_threads(threads)
        try:
            yield threads
        finally:
            numba.set_num_threads(before)
            self.release()


def default_folder() -> Path:
    """``$TSUNAMI_RUNTIME_DIR``, else ``tsunami-<uid>`` in the temporary folder."""
    folder = os.environ.get("TSUNAMI_RUNTIME_DIR")
    if folder:
        return Path(folder)
    uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"tsunami-{uid}"


def _forget_in_child() -> None:
    """A forked child shares its parent's open lock files; dropping its copies (close
    only: an unlock would release the parent's lock) keeps a child that outlives its
    parent from holding the parent's presence or tokens."""
    for member in list(_open_members):
        for fd in member._files.values():
            try:
                os.close(fd)
            except OSError:
                pass
        member._files, member._held, member.slot = {}, [], None
        member.budget.cores = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
