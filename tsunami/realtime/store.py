"""The record store: every sample received is committed to SQLite before anything uses it.

One SQLite file holds, in arrival order (``seq``):

- ``records``: every sample, unique on (station, time_ns, source). Receiving the same
  sample again (a replay restarted, a file re-read after rotation, an HTTP client
  retrying) changes nothing; a sample with the same key but another value is kept (once) in
  ``conflicts`` (the first value wins, so what a forecast used never changes).
- ``problems``: lines and requests that could not be read (file, line, reason, text).
- ``offsets``: how far the folder watcher has read each file, committed in the same
  transaction as the records read, so a restart neither loses nor repeats a line.
- ``forecast_inputs``: per forecast and station, the time window used and the arrival
  sequence number it stopped at, with a SHA-256 digest of the samples: a forecast can be
  reproduced from exactly its data (:meth:`RecordStore.forecast_records`) and checked
  (:meth:`RecordStore.verify_forecast`), even after later samples of the window arrived.

Durability: WAL journal with ``synchronous=FULL``. In WAL mode NORMAL already survives a
crash or kill of the process, but a power cut or OS crash may roll back the last commits;
an HTTP client is told "received" only after the commit, so acknowledged data must
survive that too, hence FULL (one fsync of the WAL per commit; batches amortise it:
measured figures in README, "Real-time feeds").
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsunami.realtime.formats import Problem
from tsunami.realtime.records import Record

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, station TEXT NOT NULL, time_ns INTEGER NOT NULL,
    source TEXT NOT NULL, value REAL, unit TEXT NOT NULL, kind TEXT NOT NULL,
    flags INTEGER NOT NULL, received_ns INTEGER NOT NULL,
    UNIQUE (station, time_ns, source)) STRICT;
CREATE INDEX IF NOT EXISTS records_by_station_time ON records (station, time_ns);
CREATE TABLE IF NOT EXISTS conflicts (
    seq INTEGER PRIMARY KEY, station TEXT NOT NULL, time_ns INTEGER NOT NULL,
    source TEXT NOT NULL, value REAL, unit TEXT NOT NULL, received_ns INTEGER NOT NULL,
    UNIQUE (station, time_ns, source, value, unit)) STRICT;
CREATE TABLE IF NOT EXISTS problems (
    seq INTEGER PRIMARY KEY, received_ns INTEGER NOT NULL, source TEXT NOT NULL,
    line INTEGER, message TEXT NOT NULL, text TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS offsets (
    path TEXT PRIMARY KEY, identity TEXT NOT NULL, byte_offset INTEGER NOT NULL,
    line INTEGER NOT NULL, head TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS forecast_inputs (
    forecast_id TEXT NOT NULL, station TEXT NOT NULL, start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL, upto_seq INTEGER NOT NULL, n_records INTEGER NOT NULL,
    digest TEXT NOT NULL, recorded_ns INTEGER NOT NULL,
    PRIMARY KEY (forecast_id, station)) STRICT;
"""


@dataclass(frozen=True)
class InsertResult:
    """What one committed batch did: the new records (in arrival order), how many were
    already stored with the same value, and how many repeated a key with another value."""

    inserted: list[Record]
    duplicates: int
    conflicts: int
    last_seq: int


@dataclass(frozen=True)
class RecordArray:
    """Samples of one station, ordered by time then arrival (``seq``)."""

    station: str
    seq: np.ndarray       # int64, arrival order
    time_ns: np.ndarray   # int64, ns since the epoch, UTC
    value: np.ndarray     # float64, NaN where missing
    flags: np.ndarray     # int64, Flag bits set at ingest
    unit: np.ndarray      # object (str)
    kind: np.ndarray      # object (str)
    source: np.ndarray    # object (str)

    def __len__(self) -> int:
        return len(self.seq)

    def digest(self) -> str:
        """SHA-256 of (time, value, flags, source) of every sample, in order."""
        h = hashlib.sha256()
        for t, v, f, s in zip(self.time_ns, self.value, self.flags, self.source, strict=True):
            h.update(struct.pack("<qdq", int(t), float(v), int(f)))
            h.update(str(s).encode() + b"\0")
        return h.hexdigest()


@dataclass(frozen=True)
class ForecastInput:
    """The data of one station a forecast used."""

    forecast_id: str
    station: str
    start_ns: int
    end_ns: int
    upto_seq: int
    n_records: int
    digest: str


class RecordStore:
    """An SQLite record store (thread-safe; one writer at a time, readers in parallel).

    ``synchronous`` is "FULL" (default, module doc) or "NORMAL".
    """

    def __init__(self, path: str | Path, synchronous: str = "FULL") -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------
    def insert(self, records: Iterable[Record], problems: Iterable[Problem] = (),
               offset: tuple[str, str, int, int, str] | None = None) -> InsertResult:
        """Commit a batch (records, problems met reading them and, for the folder
        watcher, the file position ``(path, identity, byte_offset, line, head)`` reached)
        in one transaction; returns only after the commit is durable."""
        now = time.time_ns()
        inserted: list[Record] = []
        duplicates = conflicts = 0
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for r in records:
                    value = None if math.isnan(r.value) else r.value
                    cur = db.execute(
                        "INSERT INTO records (station, time_ns, source, value, unit, kind, "
                        "flags, received_ns) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                        (r.station, r.time_ns, r.source, value, r.unit, r.kind, int(r.flags),
                         now))
                    if cur.rowcount:
                        inserted.append(r)
                        continue
                    old = db.execute(
                        "SELECT value, unit FROM records WHERE station=? AND time_ns=? AND "
                        "source=?", (r.station, r.time_ns, r.source)).fetchone()
                    if old == (value, r.unit):
                        duplicates += 1
                    else:
                        conflicts += 1
                        db.execute("INSERT INTO conflicts (station, time_ns, source, value, "
                                   "unit, received_ns) VALUES (?,?,?,?,?,?) "
                                   "ON CONFLICT DO NOTHING",
                                   (r.station, r.time_ns, r.source, value, r.unit, now))
                db.executemany(
                    "INSERT INTO problems (received_ns, source, line, message, text) "
                    "VALUES (?,?,?,?,?)",
                    [(now, p.source, p.line, p.message, p.text[:500]) for p in problems])
                if offset is not None:
                    db.execute("INSERT OR REPLACE INTO offsets VALUES (?,?,?,?,?)", offset)
                last = db.execute("SELECT max(seq) FROM records").fetchone()[0] or 0
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return InsertResult(inserted, duplicates, conflicts, last)

    def log_problems(self, problems: Iterable[Problem]) -> None:
        """Persist problems alone (a request that carried no record)."""
        self.insert((), problems)

    # -- reading ------------------------------------------------------------------------
    def stations(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute(
                "SELECT DISTINCT station FROM records ORDER BY station")]

    def last_seq(self) -> int:
        with self._lock:
            return self._db.execute("SELECT max(seq) FROM records").fetchone()[0] or 0

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM records").fetchone()[0]

    def records(self, station: str, start_ns: int | None = None, end_ns: int | None = None,
                upto_seq: int | None = None) -> RecordArray:
        """The samples of ``station`` with start_ns <= time < end_ns that had arrived by
        ``upto_seq`` (None: all), ordered by time then arrival."""
        query = ("SELECT seq, time_ns, value, flags, unit, kind, source FROM records "
                 "WHERE station=? AND time_ns>=? AND time_ns<? AND seq<=? "
                 "ORDER BY time_ns, seq")
        args = (station, -(2**63) if start_ns is None else start_ns,
                2**63 - 1 if end_ns is None else end_ns,
                2**63 - 1 if upto_seq is None else upto_seq)
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        cols = list(zip(*rows, strict=True)) if rows else [()] * 7
        return RecordArray(
            station, np.array(cols[0], dtype=np.int64), np.array(cols[1], dtype=np.int64),
            np.array([np.nan if v is None else v for v in cols[2]], dtype=np.float64),
            np.array(cols[3], dtype=np.int64), np.array(cols[4], dtype=object),
            np.array(cols[5], dtype=object), np.array(cols[6], dtype=object))

    def since(self, after_seq: int) -> list[tuple[int, Record]]:
        """Records that arrived after ``after_seq``, in arrival order (a consumer that
        restarts resumes from the last sequence number it handled)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, station, time_ns, value, unit, kind, source, flags FROM records "
                "WHERE seq>? ORDER BY seq", (after_seq,)).fetchall()
        return [(seq, Record(st, t, math.nan if v is None else v, u, k, s, f))
                for seq, st, t, v, u, k, s, f in rows]

    def conflicts(self, station: str | None = None) -> list[tuple[str, int, str, float]]:
        """(station, time_ns, source, value) of samples that repeated a key with another
        value (logged, not used)."""
        query = "SELECT station, time_ns, source, value FROM conflicts"
        with self._lock:
            rows = (self._db.execute(query + " WHERE station=? ORDER BY seq", (station,))
                    if station else self._db.execute(query + " ORDER BY seq")).fetchall()
        return [(s, t, src, math.nan if v is None else v) for s, t, src, v in rows]

    def problems(self, source: str | None = None) -> list[Problem]:
        query = "SELECT source, line, message, text FROM problems"
        with self._lock:
            rows = (self._db.execute(query + " WHERE source=? ORDER BY seq", (source,))
                    if source else self._db.execute(query + " ORDER BY seq")).fetchall()
        return [Problem(*row) for row in rows]

    def offset(self, path: str) -> tuple[str, int, int, str] | None:
        """(identity, byte_offset, line, head) the folder watcher reached in ``path``."""
        with self._lock:
            row = self._db.execute("SELECT identity, byte_offset, line, head FROM offsets "
                                   "WHERE path=?", (path,)).fetchone()
        return tuple(row) if row else None

    # -- what each forecast used ----------------------------------------------------------
    def record_forecast_inputs(self, forecast_id: str,
                               windows: Sequence[tuple[str, int, int]],
                               upto_seq: int | None = None) -> list[ForecastInput]:
        """Record that ``forecast_id`` used, per (station, start_ns, end_ns) window, the
        samples that had arrived by ``upto_seq`` (default: now). Returns the rows. A
        forecast run again (after a restart) replaces what its earlier attempt recorded."""
        upto = self.last_seq() if upto_seq is None else upto_seq
        rows = []
        for station, start, end in windows:
            data = self.records(station, start, end, upto)
            rows.append(ForecastInput(forecast_id, station, int(start), int(end), upto,
                                      len(data), data.digest()))
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM forecast_inputs WHERE forecast_id=?", (forecast_id,))
                db.executemany("INSERT INTO forecast_inputs VALUES (?,?,?,?,?,?,?,?)",
                               [(r.forecast_id, r.station, r.start_ns, r.end_ns, r.upto_seq,
                                 r.n_records, r.digest, time.time_ns()) for r in rows])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return rows

    def forecast_inputs(self, forecast_id: str) -> list[ForecastInput]:
        with self._lock:
            rows = self._db.execute(
                "SELECT forecast_id, station, start_ns, end_ns, upto_seq, n_records, digest "
                "FROM forecast_inputs WHERE forecast_id=? ORDER BY station",
                (forecast_id,)).fetchall()
        return [ForecastInput(*row) for row in rows]

    def forecast_records(self, forecast_id: str) -> dict[str, RecordArray]:
        """Exactly the samples ``forecast_id`` used, per station."""
        return {i.station: self.records(i.station, i.start_ns, i.end_ns, i.upto_seq)
                for i in self.forecast_inputs(forecast_id)}

    def verify_forecast(self, forecast_id: str) -> bool:
        """True if the stored samples still digest to what the forecast recorded."""
        inputs = self.forecast_inputs(forecast_id)
        data = self.forecast_records(forecast_id)
        return bool(inputs) and all(data[i.station].digest() == i.digest for i in inputs)
