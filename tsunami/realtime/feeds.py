"""Feeds: recorded files replayed at real or accelerated speed, and a watched folder.

Every feed hands its records to :meth:`RecordStore.insert` and only the records that
call returns (committed, new) go on to quality control and the triggers; the HTTP ingest
endpoint is in :mod:`tsunami.realtime.ingest`.

Driving them from one service loop: :func:`paced` turns records into ``(due, batch)``
pairs (seconds after the replay starts); :func:`replay` sleeps between them in a thread,
:func:`areplay` in asyncio. :meth:`FolderWatcher.poll` does one non-blocking pass over the
folder (call it from a thread, or ``await asyncio.to_thread(watcher.poll)``).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tsunami.realtime.formats import (
    LineParser,
    Problem,
    detect_format,
    parse_lines,
    read_file,
    station_for,
)
from tsunami.realtime.records import NS_PER_S, Record
from tsunami.realtime.stations import StationCatalogue
from tsunami.realtime.store import InsertResult, RecordStore

log = logging.getLogger(__name__)


def read_files(paths: Iterable[str | Path], catalogue: StationCatalogue,
               epoch: datetime | str | int | None = None, fmt: str | None = None
               ) -> tuple[list[Record], list[Problem]]:
    """Records of recorded files (station from each file name, module
    :func:`~tsunami.realtime.formats.station_for`), sorted by time; files of unknown
    stations or formats, and files without a record, become problems."""
    records: list[Record] = []
    problems: list[Problem] = []
    for path in map(Path, paths):
        station = station_for(path, catalogue)
        if station is None:
            problems.append(Problem(path.name, None, "no catalogue station matches the "
                                    "file name"))
            continue
        got, bad = read_file(path, station, fmt, epoch)
        if not got and not bad:  # an empty recording: a feed that failed, say so
            bad = [Problem(path.name, None, "the file holds no records")]
        records += got
        problems += bad
    records.sort(key=lambda r: r.time_ns)
    return records, problems


def paced(records: Sequence[Record], speed: float = 1.0, tick_s: float = 1.0,
          start_ns: int | None = None) -> Iterator[tuple[float, list[Record]]]:
    """``(due_s, batch)`` pairs replaying time-sorted ``records``: a record of time t is
    due (t - start_ns) / speed seconds after the replay starts (``start_ns`` defaults to
    the first record's time); records due within the same ``tick_s`` travel together.
    ``speed = inf`` sends everything at once in batches of 10,000."""
    if not speed > 0:
        raise ValueError(f"speed must be positive, got {speed}")
    if not records:
        return
    start = records[0].time_ns if start_ns is None else start_ns
    if math.isinf(speed):
        for i in range(0, len(records), 10_000):
            yield 0.0, list(records[i:i + 10_000])
        return
    batch: list[Record] = []
    tick = None
    for r in records:
        due = max(0.0, (r.time_ns - start) / NS_PER_S / speed)
        this = math.floor(due / tick_s)
        if batch and this != tick:
            yield tick * tick_s, batch
            batch = []
        tick = this
        batch.append(r)
    if batch:
        yield tick * tick_s, batch


def replay(records: Sequence[Record], sink: Callable[[list[Record]], object],
           speed: float = 1.0, tick_s: float = 1.0, stop: threading.Event | None = None,
           start_ns: int | None = None) -> int:
    """Send ``records`` to ``sink`` at ``speed`` times real time (blocking; ``stop``
    ends it early). Returns the number of records sent."""
    t0 = time.monotonic()
    sent = 0
    for due, batch in paced(records, speed, tick_s, start_ns):
        wait = t0 + due - time.monotonic()
        if stop is not None:
            if stop.wait(max(0.0, wait)):
                break
        elif wait > 0:
            time.sleep(wait)
        sink(batch)
        sent += len(batch)
    return sent


async def areplay(records: Sequence[Record], sink: Callable[[list[Record]], object],
                  speed: float = 1.0, tick_s: float = 1.0, start_ns: int | None = None) -> int:
    """:func:`replay` for asyncio; ``sink`` may be a coroutine function. Cancel to stop."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    sent = 0
    for due, batch in paced(records, speed, tick_s, start_ns):
        await asyncio.sleep(max(0.0, t0 + due - loop.time()))
        result = sink(batch)
        if inspect.isawaitable(result):
            await result
        sent += len(batch)
    return sent


@dataclass
class _Open:
    """What the watcher holds in memory about a file it is reading."""

    identity: str
    parser: LineParser | None
    pending: tuple[int, int] = (-1, 0)  # (size when a partial last line was seen, polls)


class FolderWatcher:
    """Reads files dropped into or appended to ``folder`` into ``store``.

    Each pass (:meth:`poll`) reads, per regular file not starting with ``.`` (temporary
    names of writers that rename into place), the complete lines added since the last
    pass. A last line without its newline is held back until it is complete, or until
    the file has not changed for ``settle_polls`` passes (a file dropped without a final
    newline). A file replaced (rotation: other inode, shorter, or other first bytes) is
    read again from its start; samples already stored are recognised as duplicates. The
    position reached is committed with the records, so a restart goes on where it
    stopped. Files that are not text, of no known format or of no catalogue station are
    logged once as problems; nothing here raises on bad input.
    """

    def __init__(self, folder: str | Path, catalogue: StationCatalogue, store: RecordStore,
                 epoch: datetime | str | int | None = None, settle_polls: int = 2,
                 on_records: Callable[[list[Record]], object] | None = None) -> None:
        self.folder = Path(folder)
        self.catalogue, self.store, self.epoch = catalogue, store, epoch
        self.settle_polls = settle_polls
        self.on_records = on_records
        self._open: dict[str, _Open] = {}

    def poll(self) -> list[InsertResult]:
        """One pass over the folder; returns what each file's commit did."""
        results = []
        try:
            entries = sorted(p for p in self.folder.iterdir() if not p.name.startswith("."))
        except OSError as exc:
            log.warning("cannot list %s: %s", self.folder, exc)
            return results
        seen = set()
        for path in entries:
            try:
                st = path.stat()
            except OSError:
                continue  # vanished between listing and stat
            if not path.is_file():
                continue
            seen.add(str(path))
            try:
                result = self._read(path, f"{st.st_dev}:{st.st_ino}", st.st_size)
            except OSError as exc:  # unreadable now (permissions, vanished): next pass
                log.warning("cannot read %s: %s", path, exc)
                continue
            if result is not None:
                results.append(result)
                if result.inserted and self.on_records is not None:
                    self.on_records(result.inserted)
        for gone in set(self._open) - seen:
            del self._open[gone]
        return results

    def run(self, interval_s: float = 1.0, stop: threading.Event | None = None) -> None:
        """Poll every ``interval_s`` until ``stop`` is set (for a thread)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            self.poll()
            stop.wait(interval_s)

    def _read(self, path: Path, identity: str, size: int) -> InsertResult | None:
        key = str(path)
        saved = self.store.offset(key)
        offset, line = (saved[1], saved[2]) if saved else (0, 0)
        with open(path, "rb") as f:
            first = f.read(512)
            if saved and (saved[0] != identity or size < offset
                          or saved[3] != _head(first, offset)):
                log.info("%s was replaced or rotated: reading it again from the start", path)
                offset, line = 0, 0
                self._open.pop(key, None)
            if size == offset:
                return None
            state = self._open.get(key)
            if state is None or state.identity != identity:
                state = self._start(path, identity, f, offset)
                self._open[key] = state
            f.seek(offset)
            data = f.read(size - offset)
        if state.parser is None:  # unusable file: logged once, skip its bytes
            return self.store.insert((), (), (key, identity, size, line, _head(first, size)))
        before, newline, partial = data.rpartition(b"\n")
        complete = before + newline  # through the last newline
        if partial:
            polls = state.pending[1] + 1 if state.pending[0] == size else 1
            state.pending = (size, polls)
            if polls > self.settle_polls:
                complete = data
        if not complete:
            return None
        text = complete.decode("utf-8", errors="replace")
        lines = text.split("\n")
        if text.endswith("\n"):
            lines = lines[:-1]
        records, problems = parse_lines(state.parser, lines, line + 1)
        records.sort(key=lambda r: r.time_ns)  # NDBC files run newest first
        problems += [Problem(path.name, line + 1 + i, "not UTF-8 text")
                     for i, t in enumerate(lines) if "\ufffd" in t]
        for p in problems:
            log.warning("%s", p)
        end = offset + len(complete)
        return self.store.insert(records, problems,
                                 (key, identity, end, line + len(lines), _head(first, end)))

    def _start(self, path: Path, identity: str, f, offset: int) -> _Open:
        """Parser for a file first seen (or seen again after a restart: the lines before
        ``offset`` are parsed again only to restore header state such as the epoch)."""
        f.seek(0)
        head = f.read(4096).decode("utf-8", errors="replace")
        station = station_for(path, self.catalogue)
        fmt = detect_format(path, head)
        if station is None or fmt is None or "\ufffd" in head[:1024] or "\0" in head:
            why = ("no catalogue station matches the file name" if station is None else
                   "not a text file" if "\ufffd" in head[:1024] or "\0" in head else
                   "unknown file format")
            problem = Problem(path.name, None, why)
            log.warning("%s", problem)
            self.store.log_problems([problem])
            return _Open(identity, None)
        parser = LineParser(fmt, station, path.name, self.epoch)
        if offset:
            f.seek(0)
            parse_lines(parser, f.read(offset).decode("utf-8", errors="replace").split("\n"))
        return _Open(identity, parser)


def _head(first: bytes, offset: int) -> str:
    """Digest of a file's first bytes up to ``offset`` (at most 512): how a replaced
    file is recognised."""
    n = min(offset, len(first), 512)
    return f"{n}:" + hashlib.sha256(first[:n]).hexdigest()[:16]
