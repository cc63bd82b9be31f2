"""Atomic, durable writing: files and whole folders appear complete or not at all.

A file is written to a temporary name beside its target and renamed into place; a folder
(a forecast, a run's outputs) is built in a hidden staging folder beside its target and
renamed into place in one step. A reader (or a disaster HQ's system polling a folder)
never sees a half-written file or folder, and a failed write leaves the previous one.

Durability: a rename can reach the disk before the data it names, so after a power loss a
complete-looking file could be empty. File contents are therefore flushed (``fsync``)
before every rename, and a folder's entries once before it is renamed, then its parent
once after. ``TSUNAMI_FSYNC=0`` in the environment skips the flushes: for scratch output
on throw-away disks only (a crash may then leave empty files behind complete names).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from tsunami import lease
from tsunami.lease import Lease, stale

DURABLE = os.environ.get("TSUNAMI_FSYNC", "1") != "0"
TEMPORARY = ".*.tmp"  # the names atomic_path (and lease.storage_now) write to first
STAGING_LEASE = ".lease"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sync_file(path: str | Path) -> None:
    """Flush a file's contents to disk (no-op when ``TSUNAMI_FSYNC=0``)."""
    if DURABLE:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sync_dir(path: str | Path) -> None:
    """Flush a folder's entries (creations, renames) to disk."""
    if not DURABLE:
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some network and FUSE file systems cannot sync folders
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def sync_tree(folder: Path) -> None:
    """Flush every file under ``folder``, then each folder's entries (one sync per
    folder, whatever wrote the files: GDAL, netCDF, SQLite, matplotlib)."""
    for root, _, files in os.walk(folder, topdown=False):
        for name in files:
            sync_file(os.path.join(root, name))
        sync_dir(root)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is flushed to disk and replaces
    ``path`` atomically.

    The file gets the usual permissions (0666 less the umask), not mkstemp's 0600. The
    rename itself is made durable by the caller syncing the folder where that matters
    (a replaced file that reverts to its previous version after a crash is consistent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        sync_file(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: Path, now: float) -> list[Path]:
    """Delete temporary files of :func:`atomic_path` left in ``folder`` by killed
    processes: those not written for :data:`tsunami.lease.STALE_AFTER_S` (a live writer
    writes its temporary file as soon as it has it)."""
    removed = []
    for path in Path(folder).glob(TEMPORARY):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and age(path, now) > lease.STALE_AFTER_S:
                path.unlink()
                removed.append(path)
    return removed


class StagingFolder:
    """A hidden folder ``parent/<prefix><token>`` to build a folder in, guarded by a lease
    (:mod:`tsunami.lease`) so that no other process judges it abandoned while we work.

    Used as a context manager: the folder is removed if the block raises. :meth:`commit`
    moves it to its final name in one rename.
    """

    def __init__(self, parent: Path, prefix: str) -> None:
        self.path = Path(parent) / f"{prefix}{uuid.uuid4().hex[:12]}"
        self.path.mkdir(parents=True)
        self.lease = Lease.acquire(self.path / STAGING_LEASE)

    def __enter__(self) -> StagingFolder:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.discard()

    def commit(self, target: Path) -> Path:
        """Flush everything, then rename the folder to ``target``, which must not exist
        (FileExistsError: a folder is never replaced here)."""
        self.lease.release()
        sync_tree(self.path)
        taken = FileExistsError(f"{target} was created by another process meanwhile; it is "
                                "left as it is")
        if os.path.lexists(target):
            raise taken
        try:
            os.rename(self.path, target)  # fails on a non-empty target: never overwrites
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise taken from None
            raise
        sync_dir(Path(target).parent)
        return Path(target)

    def discard(self) -> None:
        self.lease.release()
        shutil.rmtree(self.path, ignore_errors=True)


def remove_stale_staging(parent: Path, pattern: str, now: float) -> list[Path]:
    """Delete staging folders matching ``pattern`` in ``parent`` whose lease is stale
    (holder provably dead, or not refreshed for :data:`tsunami.lease.STALE_AFTER_S`).
    A folder without a lease (from an older version) is judged by its own age."""
    removed = []
    for path in Path(parent).glob(pattern):
        if path.is_dir() and not path.is_symlink() and stale(path / STAGING_LEASE, now, path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def age(path: Path, now: float) -> float:
    """Seconds since ``path`` (not following links) was last modified, on the storage
    clock ``now``."""
    return now - os.lstat(path).st_mtime
