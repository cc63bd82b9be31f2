"""A run's output folder, written and replaced as a whole, and read back verified.

``tsunami run --out OUT`` builds every output in a hidden staging folder beside ``OUT``
(``.OUT.staging-<id>``), flushes it to disk and renames it to ``OUT``. An existing run
folder is replaced: renamed aside (``.OUT.old-<id>``), the new one renamed in, then what
is not a run output in the old one (the default outbox ``OUT/outbox``, notes of the user)
moved into the new one and the rest deleted. So ``OUT`` holds one run's outputs, never a
mixture of two, and never stale towns of an earlier run.

A crash (power loss, SIGKILL) between the steps leaves:

- while building: ``OUT`` untouched and a staging folder, removed by the next run into
  ``OUT`` once its lease is stale (:mod:`tsunami.lease`);
- between the two renames (a window of microseconds): no ``OUT`` but the complete old run in
  ``.OUT.old-<id>`` and the complete new one in ``.OUT.staging-<id>``; rename either back
  to ``OUT`` by hand, or run again (the next run carries the old folder's other contents,
  the outbox, over and deletes the rest once stale);
- after the second rename: the new run in ``OUT``; the old folder's other contents are
  carried over by the next run into ``OUT`` (after the lease age, so never from under a
  live writer).

``run.json`` lists every file with its size and SHA-256; :func:`read_listing` checks them,
so a folder changed since its run (files deleted, replaced, or torn by an older version of
this program) is refused rather than published.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import glob
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tsunami.atomic import StagingFolder, age, remove_stale_staging, sync_dir
from tsunami.errors import InputError
from tsunami.lease import STALE_AFTER_S, storage_now

SUMMARY = "run.json"
RUN_OUTPUTS = (SUMMARY, "fields_*.nc", "town_*.nc", "gauges.nc", "gauges.csv", ".*.tmp")
OUTBOX = "outbox"  # the default outbox of `tsunami run`, kept when the run is replaced


def is_run_output(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in RUN_OUTPUTS)


def check_output_folder(out_dir: str | Path) -> Path:
    """The folder a run will be written to (absolute, a link followed), or InputError if
    it cannot be: a file, a mount point (it is replaced by a rename), a folder holding
    other things than a run, or a place where the folder beside it cannot be written."""
    out_dir = Path(out_dir).absolute()
    if out_dir.is_symlink():
        out_dir = out_dir.resolve()
    if out_dir.exists():
        if not out_dir.is_dir():
            raise InputError(out_dir, None, "exists and is not a folder")
        if os.path.ismount(out_dir):
            raise InputError(out_dir, None, "is a mount point; a run folder is replaced as "
                             "a whole by renaming it, so give a folder inside it")
        entries = os.listdir(out_dir)
        foreign = sorted(e for e in entries if not is_run_output(e) and e != OUTBOX)
        if SUMMARY not in entries and foreign:
            raise InputError(out_dir, None, f"holds files that are not a tsunami run's "
                             f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}"
                             "); give a new or empty folder (a run replaces its folder)")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(out_dir, None, f"cannot create the output folder: "
                         f"{exc.strerror or exc}") from None
    if not os.access(out_dir.parent, os.W_OK | os.X_OK):
        raise InputError(out_dir, None, f"the folder holding it ({out_dir.parent}) is not "
                         "writable: a run is built beside its folder and renamed into place")
    return out_dir


@contextlib.contextmanager
def run_folder(out_dir: str | Path) -> Iterator[Path]:
    """Yield a staging folder to write a run's outputs into; when the block ends without
    error it replaces ``out_dir`` as a whole (see the module docstring)."""
    out_dir = check_output_folder(out_dir)
    try:
        staging = StagingFolder(out_dir.parent, f".{out_dir.name}.staging-")
    except OSError as exc:
        raise InputError(out_dir, None, f"cannot write beside it in {out_dir.parent}: "
                         f"{exc.strerror or exc}") from None
    with staging:
        yield staging.path
        _install(staging, out_dir)
    _remove_leftovers(out_dir)


def _install(staging: StagingFolder, out_dir: Path) -> None:
    for _ in range(10):  # each turn loses only to another run installed meanwhile
        old = None
        if os.path.lexists(out_dir):
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:12]}"
            try:
                os.rename(out_dir, old)
                os.utime(old)  # its age now says when it was replaced
            except FileNotFoundError:  # another run moved it first
                old = None
            except OSError as exc:
                reason = ("it is a mount point or busy" if exc.errno in
                          (errno.EBUSY, errno.EXDEV) else exc.strerror)
                raise InputError(out_dir, None, f"cannot replace the folder ({reason}); "
                                 "give a new folder") from None
        try:
            staging.commit(out_dir)
        except FileExistsError:  # another run was installed between our two renames
            if old is not None:
                _retire(old, out_dir)
            continue
        if old is not None:
            _retire(old, out_dir)
        return
    raise InputError(out_dir, None, "other runs kept replacing this folder; give each run "
                     "its own --out")


def _retire(old: Path, out_dir: Path) -> None:
    """Move what is not a run output from a replaced run folder into ``out_dir`` (unless
    it has its own), then delete the rest."""
    for entry in os.scandir(old):
        target = out_dir / entry.name
        if not is_run_output(entry.name) and not os.path.lexists(target):
            with contextlib.suppress(FileNotFoundError):
                os.rename(entry.path, target)
    sync_dir(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _remove_leftovers(out_dir: Path) -> None:
    """What crashed runs into ``out_dir`` left beside it, once provably abandoned."""
    now = storage_now(out_dir.parent)
    name = glob.escape(out_dir.name)
    remove_stale_staging(out_dir.parent, f".{name}.staging-*", now)
    for old in out_dir.parent.glob(f".{name}.old-*"):
        with contextlib.suppress(FileNotFoundError):
            if age(old, now) > STALE_AFTER_S:
                _retire(old, out_dir)


def file_record(path: Path) -> dict:
    """How ``run.json`` lists a file: name, size (bytes) and SHA-256."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": digest}


@dataclass
class Listing:
    """A run folder's ``run.json`` and the files it lists, checked."""

    folder: Path
    summary: dict
    files: list[Path]
    stat: os.stat_result  # of run.json: compared after reading to detect a replacement

    def replaced(self) -> bool:
        """Whether the folder was replaced by another run since it was listed."""
        try:
            return not os.path.samestat(self.stat, os.stat(self.folder / SUMMARY))
        except OSError:
            return True


def read_listing(run_dir: str | Path) -> Listing:
    """``run.json`` of a run folder and the files it lists, each checked against its
    recorded size and SHA-256 (files of an older version's run.json, which lists names
    only, against their presence). InputError names the first file that does not match.
    """
    run_dir = Path(run_dir)
    path = run_dir / SUMMARY
    try:
        stat = os.stat(path)
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        name = glob.escape(run_dir.name)
        leftovers = sorted(p.name for kind in ("staging", "old")
                           for p in run_dir.parent.glob(f".{name}.{kind}-*"))
        hint = (f"; a run that was replacing it left {', '.join(leftovers)} beside it: "
                f"rename the complete one to {run_dir.name}" if leftovers else "")
        raise FileNotFoundError(f"{run_dir} holds no {SUMMARY}: not a tsunami run "
                                f"folder{hint}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"is not valid JSON ({exc})") from None
    files = summary.get("files") if isinstance(summary, dict) else None
    if not isinstance(files, list):
        raise InputError(path, "files", "missing: not a run.json written by `tsunami run`")
    records, paths = [], []
    for entry in files:
        record = {"name": entry} if isinstance(entry, str) else entry
        name = record.get("name") if isinstance(record, dict) else None
        if not isinstance(name, str) or not name or Path(name).name != name:
            raise InputError(path, "files", f"{entry!r} is not a file of the folder")
        problem = _mismatch(run_dir / name, record)
        if problem:
            raise InputError(path, "files", f"lists {name} but {problem}: the folder is "
                             "incomplete or was changed after its run (a run killed while "
                             "writing, files deleted or replaced); run the scenario again")
        records.append(record)
        paths.append(run_dir / name)
    summary["files"] = records
    return Listing(run_dir, summary, paths, stat)


def _mismatch(path: Path, record: dict) -> str | None:
    if not path.is_file():
        return "it is missing"
    if "bytes" in record and path.stat().st_size != record["bytes"]:
        return f"it has {path.stat().st_size} bytes, not {record['bytes']}"
    if "sha256" in record and file_record(path)["sha256"] != record["sha256"]:
        return "its content differs (SHA-256)"
    return None
