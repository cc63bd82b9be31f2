"""Feeds: file formats, the SQLite record store, replay and the watched folder."""

import itertools
import math
import threading
from pathlib import Path

import numpy as np
import pytest

from tsunami.realtime.feeds import FolderWatcher, paced, read_files, replay
from tsunami.realtime.formats import (
    TOHOKU2011_EPOCH,
    LineParser,
    parse_lines,
    read_file,
)
from tsunami.realtime.records import Flag, Record, iso, to_ns
from tsunami.realtime.stations import StationCatalogue
from tsunami.realtime.store import RecordStore

ROOT = Path(__file__).resolve().parents[1]
GAUGES = ROOT / "scenarios" / "tohoku2011" / "gauges"
CATALOGUE = StationCatalogue.load(ROOT / "scenarios" / "tohoku2011" / "stations.toml")
T0 = to_ns(TOHOKU2011_EPOCH)


def test_two_column_2011_dart_record():
    records, problems = read_file(GAUGES / "21418.dat", CATALOGUE["21418"], "two_column",
                                  TOHOKU2011_EPOCH)
    assert not problems and len(records) == 210
    assert records[0].time_ns == T0 and records[0].value == pytest.approx(-114.70)
    assert iso(records[-1].time_ns) == "2011-03-11T08:59:00Z"
    assert all(r.kind == "bottom_pressure" and r.unit == "m" for r in records)
    stamps = [r.time_ns for r in records]
    assert len(stamps) - len(set(stamps)) == 4  # the file's repeated stamps


def test_two_column_nan_is_a_missing_sample():
    records, problems = read_file(GAUGES / "806.dat", CATALOGUE["806"], "two_column",
                                  TOHOKU2011_EPOCH)
    missing = [r for r in records if r.flags & Flag.MISSING]
    assert not problems and len(records) == 2328 and len(missing) == 38
    assert all(math.isnan(r.value) for r in missing)


def test_ndbc_dart_text_newest_first_with_missing_values(tmp_path):
    """The 21418 record written as an NDBC real-time file (newest row first, MM)."""
    data = np.loadtxt(GAUGES / "21418.dat")
    lines = ["#YY  MM DD hh mm ss T   HEIGHT", "#yr  mo dy hr mn  s -        m"]
    for i, (t, h) in enumerate(data[::-1]):
        when = TOHOKU2011_EPOCH.timestamp() + t
        stamp = np.datetime64(int(when), "s").astype(object)
        height = "MM" if i == 3 else ("9999.000" if i == 4 else f"{5660 + h:.3f}")
        lines.append(f"{stamp:%Y %m %d %H %M %S} {3 if t % 60 else 2} {height}")
    path = tmp_path / "21418.dart"
    path.write_text("\n".join(lines) + "\n")
    records, problems = read_file(path, CATALOGUE["21418"])  # format detected
    assert not problems and len(records) == 210
    assert records[0].time_ns > records[-1].time_ns  # as in the file
    assert sum(bool(r.flags & Flag.MISSING) for r in records) == 2
    first = min(records, key=lambda r: r.time_ns)
    assert first.time_ns == T0 and first.value == pytest.approx(5660 - 114.70)
    # dropped into a watched folder, the file's rows are stored oldest first
    folder = tmp_path / "drop"
    folder.mkdir()
    path.rename(folder / path.name)
    with RecordStore(tmp_path / "r.db") as store:
        FolderWatcher(folder, CATALOGUE, store).poll()
        stored = store.records("21418")
        assert len(stored) == 206  # four repeated stamps are conflicts
        assert (np.diff(stored.seq) > 0).all()  # arrival order = time order


def test_csv_iso_and_epoch_seconds_and_bad_lines(tmp_path):
    path = tmp_path / "P02.csv"
    path.write_text("# epoch: 2011-03-11T05:46:00Z\n# unit: hPa\ntime,value\n"
                    "2011-03-11T05:46:00Z,1000.5\n1.0,1000.6\n2,\n"
                    "2011-03-11T05:46:03,abc\n4,1,2\nnot-a-time,3\n5,inf\n")
    records, problems = read_file(path, CATALOGUE["P02"])
    assert [r.time_ns - T0 for r in records] == [0, 10**9, 2 * 10**9, 5 * 10**9]
    assert records[0].unit == "hPa" and records[0].value == 1000.5
    assert records[2].flags & Flag.MISSING and records[3].flags & Flag.RANGE
    assert [p.line for p in problems] == [7, 8, 9]
    assert "value 'abc'" in problems[0].message and "P02.csv" in str(problems[0])
    # seconds without an epoch: a problem naming the missing epoch, not a crash
    parser = LineParser("csv", CATALOGUE["P02"], "x.csv")
    recs, probs = parse_lines(parser, ["time,value", "12.5,3.0"])
    assert not recs and "no epoch" in probs[0].message


def test_garbage_and_binary_files_are_problems_not_errors(tmp_path):
    (tmp_path / "P02.csv").write_bytes(b"\x00\x01\xff\xfe garbage \x00")
    (tmp_path / "XYZ.csv").write_text("time,value\n")
    (tmp_path / "P06.bin").write_text("1 2\n")
    records, problems = read_files(sorted(tmp_path.iterdir()), CATALOGUE)
    assert not records
    reasons = " | ".join(str(p) for p in problems)
    assert "P06.bin" in reasons and "no catalogue station" in reasons
    assert "P02.csv" in reasons


def test_a_file_without_records_is_a_problem(tmp_path):
    """An empty recording (a feed that wrote nothing, a header alone) is said, not
    replayed as nothing in silence."""
    (tmp_path / "P02.csv").write_text("")
    (tmp_path / "802.csv").write_text("time,value\n")
    records, problems = read_files(sorted(tmp_path.iterdir()), CATALOGUE)
    assert not records
    assert sorted(str(p) for p in problems) == [
        "802.csv: the file holds no records", "P02.csv: the file holds no records"]


def _records(n, start=T0, station="802", source="test", step_s=5):
    return [Record(station, start + i * step_s * 10**9, 0.01 * i, "m",
                   CATALOGUE[station].kind, source) for i in range(n)]


def test_store_is_idempotent_and_keeps_conflicts(tmp_path):
    with RecordStore(tmp_path / "r.db") as store:
        first = store.insert(_records(100))
        again = store.insert(_records(100))
        assert len(first.inserted) == 100 and not again.inserted
        assert again.duplicates == 100 and again.conflicts == 0
        changed = [Record(r.station, r.time_ns, r.value + 1, r.unit, r.kind, r.source)
                   for r in _records(3)]
        result = store.insert(changed)
        assert result.conflicts == 3 and store.count() == 100
        assert store.records("802").value[1] == pytest.approx(0.01)  # first value kept
        assert len(store.conflicts("802")) == 3
        other_source = store.insert(_records(10, source="other"))
        assert len(other_source.inserted) == 10  # same samples, another feed: kept too
        mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_store_window_query_and_forecast_reproduction(tmp_path):
    with RecordStore(tmp_path / "r.db") as store:
        store.insert(_records(120))  # 10 minutes at 5 s
        window = ("802", T0, T0 + 300 * 10**9)
        inputs = store.record_forecast_inputs("fc-1", [window])
        assert inputs[0].n_records == 60
        # a late sample inside the window arrives after the forecast
        late = Record("802", T0 + 2_500_000_000, 9.9, "m", "sea_surface_height", "late")
        store.insert([late])
        used = store.forecast_records("fc-1")["802"]
        assert len(used) == 60 and 9.9 not in used.value
        assert store.verify_forecast("fc-1")
        assert len(store.records(*window)) == 61
    with RecordStore(tmp_path / "r.db") as reopened:  # survives a restart
        assert reopened.verify_forecast("fc-1")
        assert reopened.forecast_inputs("fc-1")[0].digest == inputs[0].digest


def test_paced_replay_timing_and_order():
    records = _records(25)  # 120 s of data
    schedule = list(paced(records, speed=60.0, tick_s=0.5))
    assert sum(len(b) for _, b in schedule) == 25
    assert schedule[-1][0] == pytest.approx(2.0)  # 120 s at 60x
    assert all(a[0] < b[0] for a, b in itertools.pairwise(schedule))
    assert len(list(paced(records, speed=math.inf))) == 1


def test_feed_that_stops_and_restarts_loses_nothing(tmp_path):
    records = _records(200)
    with RecordStore(tmp_path / "r.db") as store:
        stop = threading.Event()
        got = []

        def sink(batch):
            store.insert(batch)
            got.extend(batch)
            if len(got) >= 50:
                stop.set()  # the feed dies part-way

        sent = replay(records, sink, speed=1e4, tick_s=0.01, stop=stop)
        assert 50 <= sent < 200 and store.count() == sent
        # restart from the beginning: what was stored is recognised, the rest arrives
        replay(records, store.insert, speed=math.inf)
        assert store.count() == 200
        assert np.all(np.diff(store.records("802").time_ns) == 5 * 10**9)


def _append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def test_watched_folder_appends_partial_lines_rotation_and_restart(tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    db = tmp_path / "r.db"
    store = RecordStore(db)
    seen = []
    watcher = FolderWatcher(folder, CATALOGUE, store, on_records=seen.extend)
    path = folder / "P02.csv"
    path.write_text("# epoch: 2011-03-11T05:46:00Z\ntime,value\n0,4.73\n1,4.74\n2,4.7")
    watcher.poll()
    assert store.count() == 2  # the partial last line waits
    _append(path, "5\n3,4.76\n")
    watcher.poll()
    assert store.count() == 4 and store.records("P02").value[2] == pytest.approx(4.75)
    assert len(seen) == 4
    # a file dropped without a final newline is read once it stops changing
    (folder / "P06.csv").write_text("time,value\n2011-03-11T05:46:00Z,31.0")
    for _ in range(3):
        watcher.poll()
    assert len(store.records("P06")) == 1
    # restart: a new watcher resumes where the last one stopped (header state restored)
    store.close()
    store = RecordStore(db)
    watcher = FolderWatcher(folder, CATALOGUE, store)
    _append(path, "4,4.77\n")
    watcher.poll()
    assert len(store.records("P02")) == 5
    assert store.records("P02").time_ns[-1] == T0 + 4 * 10**9
    # rotation: the file is replaced by a new one holding older and newer samples
    path.unlink()
    path.write_text("# epoch: 2011-03-11T05:46:00Z\ntime,value\n3,4.76\n4,4.77\n5,4.78\n")
    results = watcher.poll()
    assert len(store.records("P02")) == 6 and sum(r.duplicates for r in results) == 2
    # garbage in the folder: logged once, never fatal, and the rest still flows
    (folder / "P02_junk.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (folder / "unknown_station.csv").write_text("time,value\n0,1\n")
    (folder / "802.csv").write_text("time,value\nyesterday,1\n2011-03-11T05:46:00Z,0.1\n")
    watcher.poll()
    watcher.poll()
    assert len(store.records("802")) == 1
    problems = [str(p) for p in store.problems()]
    assert sum("P02_junk.csv" in p for p in problems) == 1
    assert sum("unknown_station.csv" in p for p in problems) == 1
    assert any("802.csv, line 2" in p for p in problems)
    store.close()
