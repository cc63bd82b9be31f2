"""Publication under concurrency and crashes: forecast numbers, staging, `latest`, the
collection, durability (fsync), and run folders written and replaced as a whole."""

import dataclasses
import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS
from test_products import info, synthetic_town

from tsunami import cli
from tsunami.errors import InputError
from tsunami.products import publish_run
from tsunami.products.outbox import publish
from tsunami.products.stac import Asset

FORK = multiprocessing.get_context("fork")


def fake_town_products(name, ds, folder, info, crs, resolution):
    """Stands in for the layers, maps and extents where only the outbox logic is tested."""
    path = folder / f"{name}_layer.txt"
    path.write_text(f"{info.event_id} {info.forecast_number}\n")
    return [Asset(path, f"{name}: layer", ["data"])], (139.4, 42.0, 139.5, 42.1)


@pytest.fixture
def fast_products(monkeypatch):
    monkeypatch.setattr("tsunami.products.outbox.town_products", fake_town_products)


def publish_auto(outbox, town, event="ev"):
    return publish_run({"bay": town}, outbox, event_id=event, region="r", scenario="s",
                       origin_time=None, source_type="test", timings_s={},
                       crs=CRS.from_epsg(6677), resolution=10.0)


def _exporter(outbox, barrier, rounds, fake, results):
    """One exporting process: publish ``rounds`` forecasts as soon as all are ready."""
    try:
        if fake:
            import tsunami.products.outbox as module

            module.town_products = fake_town_products
        town = synthetic_town(n=(40, 40))
        barrier.wait()
        results.put([publish_auto(outbox, town).name for _ in range(rounds)])
    except BaseException:
        results.put(traceback.format_exc())


def export_at_once(outbox, processes, rounds, fake, watch=None):
    """Start ``processes`` exporters together; ``watch`` runs in this process meanwhile.
    Returns the forecast folder names each published."""
    barrier, results = FORK.Barrier(processes), FORK.Queue()
    workers = [FORK.Process(target=_exporter, args=(outbox, barrier, rounds, fake, results))
               for _ in range(processes)]
    for w in workers:
        w.start()
    if watch:
        watch(workers)
    published = [results.get(timeout=300) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    failures = [r for r in published if isinstance(r, str)]
    assert not failures, failures[0]
    return [name for names in published for name in names]


def check_event(event, count):
    """Every forecast 1..count is complete, listed once in the collection, and latest is
    the highest; nothing is left behind."""
    from tsunami.products.outbox import forecast_folder

    names = [forecast_folder(n) for n in range(1, count + 1)]
    assert sorted(p.name for p in event.glob("forecast-*")) == sorted(names)
    for name in names:
        item = json.loads((event / name / "item.json").read_text())
        assert item["properties"]["tsunami:forecast_number"] == int(name.split("-")[1])
    collection = json.loads((event / "collection.json").read_text())
    assert [link["href"] for link in collection["links"] if link["rel"] == "item"] == [
        f"{name}/item.json" for name in names]
    assert os.readlink(event / "latest") == names[-1]
    assert not list(event.glob(".incoming-*")) and not list(event.glob(".latest-*"))
    assert not list(event.glob(".*.tmp")) and not list((event / ".reservations").iterdir())


def test_concurrent_exports_get_distinct_numbers_and_all_are_published(tmp_path):
    """Four processes exporting real products at the same moment (bad 3: the same number,
    one lost with a traceback)."""
    names = export_at_once(tmp_path, processes=4, rounds=1, fake=False)
    assert sorted(names) == [f"forecast-00{n}" for n in range(1, 5)]
    check_event(tmp_path / "ev", 4)


def test_many_concurrent_publishers_lose_nothing_and_latest_never_goes_back(tmp_path):
    """Six processes publishing three forecasts each while a reader polls `latest`: it
    always names a complete forecast and never moves backwards."""
    event = tmp_path / "ev"
    seen = []

    def watch(workers):
        while any(w.is_alive() for w in workers):
            try:
                target = os.readlink(event / "latest")
            except OSError:
                continue
            assert (event / target / "item.json").is_file()
            seen.append(int(target.split("-")[1]))
            time.sleep(0.002)

    names = export_at_once(tmp_path, processes=6, rounds=3, fake=True, watch=watch)
    assert len(set(names)) == 18
    check_event(event, 18)
    assert seen == sorted(seen)


def test_explicit_numbers_never_overwrite_and_latest_only_moves_up(tmp_path, fast_products):
    town = synthetic_town(n=(20, 20))
    tenth = publish({"bay": town}, tmp_path, info(10))
    before = (tenth / "item.json").read_bytes()
    ninth = publish({"bay": town}, tmp_path, info(9))  # a republication of an older one
    event = tmp_path / "test-event"
    assert os.readlink(event / "latest") == "forecast-010"
    with pytest.raises(FileExistsError, match="already published; forecasts are never"):
        publish({"bay": town}, tmp_path, info(10))
    assert (tenth / "item.json").read_bytes() == before
    collection = json.loads((event / "collection.json").read_text())
    assert [link["href"] for link in collection["links"] if link["rel"] == "item"] == [
        "forecast-009/item.json", "forecast-010/item.json"]
    assert ninth.name == "forecast-009"
    assert publish_auto(tmp_path, town, "test-event").name == "forecast-011"


def test_numbering_goes_on_after_999_and_sorts_by_number(tmp_path, fast_products):
    town = synthetic_town(n=(20, 20))
    publish({"bay": town}, tmp_path, info(1))
    publish({"bay": town}, tmp_path, info(999))
    assert publish_auto(tmp_path, town, "test-event").name == "forecast-1000"
    assert publish_auto(tmp_path, town, "test-event").name == "forecast-1001"
    from tsunami.products import latest_forecast, published_forecasts

    event = tmp_path / "test-event"
    assert list(published_forecasts(event)) == [1, 999, 1000, 1001]
    assert latest_forecast(event) == event / "forecast-1001"
    collection = json.loads((event / "collection.json").read_text())
    assert [link["href"] for link in collection["links"] if link["rel"] == "item"][-2:] == [
        "forecast-1000/item.json", "forecast-1001/item.json"]


def foreign_lease(path, age_s=0.0):
    """A lease written by a publisher in another container or on another host: its PID
    is not alive here, but that proves nothing."""
    from tsunami.lease import Owner

    owner = Owner("other-host", "another-boot", 4026531999, 999_999, 1, "f" * 32)
    path.write_text(json.dumps(dataclasses.asdict(owner)))
    os.utime(path, (time.time() - age_s,) * 2)


def test_a_publisher_in_another_namespace_keeps_its_staging_and_number(tmp_path,
                                                                      fast_products):
    """Bad 3: staging of a publisher whose PID is not ours was deleted by a local PID
    check. A fresh lease keeps it; once its heartbeat has stopped long enough it goes."""
    from tsunami.lease import STALE_AFTER_S

    town = synthetic_town(n=(20, 20))
    publish({"bay": town}, tmp_path, info(1))
    event = tmp_path / "test-event"
    staging = event / ".incoming-forecast-002-999999"  # what another host is building
    staging.mkdir()
    (staging / "bay_layer.txt").write_text("half written")
    foreign_lease(staging / ".lease")
    (event / ".reservations" / "2.lease").parent.mkdir(exist_ok=True)
    foreign_lease(event / ".reservations" / "2.lease")
    with pytest.raises(FileExistsError, match="being published by process 999999 on host "
                                              "'other-host'"):
        publish({"bay": town}, tmp_path, info(2))
    assert publish_auto(tmp_path, town, "test-event").name == "forecast-003"
    assert (staging / "bay_layer.txt").read_text() == "half written"
    # the other host died: after STALE_AFTER_S without a heartbeat both are abandoned
    foreign_lease(staging / ".lease", age_s=STALE_AFTER_S + 60)
    foreign_lease(event / ".reservations" / "2.lease", age_s=STALE_AFTER_S + 60)
    os.utime(staging, (time.time() - STALE_AFTER_S - 60,) * 2)
    assert publish({"bay": town}, tmp_path, info(2)).name == "forecast-002"
    assert not staging.exists()
    assert os.readlink(event / "latest") == "forecast-003"


def test_a_number_held_by_a_live_local_process_is_refused_a_dead_ones_taken_over(
        tmp_path, fast_products):
    from tsunami.products import release_forecast_number, reserve_forecast_number

    event = tmp_path / "test-event"
    assert reserve_forecast_number(event) == 1
    assert reserve_forecast_number(event) == 2
    results = FORK.Queue()

    def other():
        try:
            reserve_forecast_number(event, 2)
            results.put("taken")
        except FileExistsError as exc:
            results.put(str(exc))

    child = FORK.Process(target=other)
    child.start()
    child.join(30)
    assert f"being published by process {os.getpid()}" in results.get(timeout=5)
    # this process publishes with the number it reserved
    assert publish({"bay": synthetic_town(n=(20, 20))}, tmp_path, info(2)).name == (
        "forecast-002")
    release_forecast_number(event, 1)  # never published: the number may be reused
    script = textwrap.dedent(f"""
        import os
        from tsunami.products import reserve_forecast_number
        reserve_forecast_number({str(event)!r}, 7)
        os._exit(9)  # killed while holding forecast 7
    """)
    assert subprocess.run([sys.executable, "-c", script]).returncode == 9
    assert publish({"bay": synthetic_town(n=(20, 20))}, tmp_path, info(7)).name == (
        "forecast-007")
    assert publish_auto(tmp_path, synthetic_town(n=(20, 20)), "test-event").name == (
        "forecast-008")


def test_orphans_are_removed_only_when_provably_stale(tmp_path, fast_products):
    from tsunami.lease import STALE_AFTER_S

    town = synthetic_town(n=(20, 20))
    publish({"bay": town}, tmp_path, info(1))
    event = tmp_path / "test-event"
    old = time.time() - STALE_AFTER_S - 60
    orphans = [event / ".collection.json.abc123.tmp", event / ".latest-4242"]
    live = [event / ".collection.json.def456.tmp", event / ".latest-4343"]
    for path in (orphans[0], live[0]):
        path.write_text("{")
    for path in (orphans[1], live[1]):
        path.symlink_to("forecast-001")
    for path in orphans:
        os.utime(path, (old, old), follow_symlinks=False)
    publish({"bay": town}, tmp_path, info(2))
    assert not any(os.path.lexists(p) for p in orphans)
    assert all(os.path.lexists(p) for p in live)


def test_an_event_id_that_is_not_a_folder_name_is_refused(tmp_path, fast_products):
    outbox = tmp_path / "outbox"
    for bad in ("../../escaped", ".", "2024/01/01", "a:b*?"):
        with pytest.raises(InputError, match="event_id"):
            publish_auto(outbox, synthetic_town(n=(20, 20)), bad)
    assert not list(tmp_path.rglob("*")) and not (tmp_path.parent / "escaped").exists()


def test_products_are_on_disk_before_the_forecast_appears(tmp_path, monkeypatch,
                                                          fast_products):
    """Poor: without fsync a power loss could leave a complete-looking forecast of empty
    files. Every file is flushed before the staging folder is renamed, the folders after."""
    synced, renamed = [], []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    def rename(src, dst, **kwargs):
        renamed.append((str(src), str(dst), len(synced)))
        return real_rename(src, dst, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    folder = publish({"bay": synthetic_town(n=(20, 20))}, tmp_path, info(1))
    staging, _, before = next(r for r in renamed if r[1] == str(folder))
    flushed = synced[:before]
    for path in folder.iterdir():
        assert str(Path(staging) / path.name) in flushed, path.name
    assert staging in flushed  # the staging folder's entries
    assert str(folder.parent) in synced[before:]  # the rename into the event folder

    monkeypatch.setattr("tsunami.atomic.DURABLE", False)  # TSUNAMI_FSYNC=0
    synced.clear()
    publish({"bay": synthetic_town(n=(20, 20))}, tmp_path, info(2))
    assert synced == []


def test_the_heartbeat_keeps_a_lease_fresh(tmp_path, monkeypatch):
    from tsunami import lease

    monkeypatch.setattr(lease, "HEARTBEAT_S", 0.05)
    keeper = lease._Keeper()
    held = lease.Lease.acquire(tmp_path / "x.lease")
    keeper.add(held)
    os.utime(held.path, (1.0, 1.0))
    deadline = time.time() + 10
    while os.stat(held.path).st_mtime < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert os.stat(held.path).st_mtime > time.time() - 60
    keeper.discard(held)
    held.release()
    assert not held.path.exists()


# -- run folders ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def geo_run(tmp_path_factory):
    """A small georeferenced run with two towns (seconds)."""
    from tsunami.region import Region
    from tsunami.runner import run
    from tsunami.scenario import Scenario

    root = tmp_path_factory.mktemp("geo")
    lon = np.arange(139.0, 140.0, 0.01)
    lat = np.arange(42.5, 41.5, -0.01)
    rasters = {"dem.tif": np.tile(-1500 + 1700 * (lon - 139.0), (lat.size, 1)),  # land east
               "source.tif": 3.0 * np.exp(-((lon[None, :] - 139.6) ** 2
                                            + (lat[:, None] - 42.0) ** 2) / 0.01)}
    for name, values in rasters.items():
        with rasterio.open(root / name, "w", driver="GTiff", width=lon.size, height=lat.size,
                           count=1, dtype="float32", crs="EPSG:4326",
                           transform=Affine(0.01, 0, 139.0, 0, -0.01, 42.5)) as dst:
            dst.write(values.astype("float32"), 1)
    (root / "r.toml").write_text(
        '[region]\nname = "geo"\ncrs = "EPSG:4326"\n[[dem]]\npath = "dem.tif"\n'
        '[[grid]]\nname = "sea"\nextent = [139.0, 139.98, 41.6, 42.4]\nspacing = 0.02\n'
        'manning = 0.025\n[[gauge]]\nname = "coast"\nx = 139.85\ny = 42.0\n'
        '[[town]]\nname = "coast"\nextent = [139.7, 139.9, 41.9, 42.1]\n'
        '[[town]]\nname = "harbour"\nextent = [139.7, 139.9, 42.1, 42.3]\n')
    (root / "s.toml").write_text(
        '[scenario]\nname = "bump"\nduration = 300.0\n'
        '[source]\ntype = "displacement"\npath = "source.tif"\n')
    return run(Region.load(root / "r.toml"), Scenario.load(root / "s.toml"))


def test_a_reused_run_folder_holds_only_the_new_run(tmp_path, geo_run, capsys):
    """Bad 5: export of a reused run folder published the towns of an earlier run."""
    from tsunami.runner import write_outputs

    out = tmp_path / "run"
    write_outputs(geo_run, out)
    assert (out / "town_harbour.nc").exists()
    (out / "notes.txt").write_text("kept")
    (out / "outbox").mkdir()
    (out / "outbox" / "published.txt").write_text("kept")
    write_outputs(dataclasses.replace(geo_run, towns={"coast": geo_run.towns["coast"]}), out)
    assert sorted(p.name for p in out.iterdir()) == [
        "fields_sea.nc", "gauges.csv", "gauges.nc", "notes.txt", "outbox", "run.json",
        "town_coast.nc"]
    assert (out / "outbox" / "published.txt").read_text() == "kept"
    assert not list(tmp_path.glob(".run.*"))  # no staging or old folder left beside it
    summary = json.loads((out / "run.json").read_text())
    assert [f["name"] for f in summary["files"]] == [
        "fields_sea.nc", "town_coast.nc", "gauges.nc", "gauges.csv"]
    assert all(f["bytes"] > 0 and len(f["sha256"]) == 64 for f in summary["files"])
    # even a stale town file put back by hand is not published: run.json does not list it
    (out / "town_harbour.nc").write_bytes((out / "town_coast.nc").read_bytes())
    assert cli.main(["export", str(out), "--outbox", str(tmp_path / "box")]) == 0
    published = tmp_path / "box" / "bump" / "forecast-001"
    assert list(published.glob("coast_*")) and not list(published.glob("harbour*"))
    assert sorted(p.name for p in published.glob("*.nc")) == ["gauges.nc", "town_coast.nc"]
    capsys.readouterr()


@pytest.mark.parametrize("damage, message", [
    (lambda out: (out / "town_coast.nc").unlink(), "lists town_coast.nc but it is missing"),
    (lambda out: (out / "gauges.csv").write_text("time_s\n"), "lists gauges.csv but it has"),
    (lambda out: (out / "town_coast.nc").write_bytes(
        (out / "town_harbour.nc").read_bytes()[:(out / "town_coast.nc").stat().st_size]
        .ljust((out / "town_coast.nc").stat().st_size, b"\0")),
     "lists town_coast.nc but its content differs"),
])
def test_export_refuses_a_torn_run_folder(tmp_path, geo_run, capsys, damage, message):
    from tsunami.runner import write_outputs

    out = tmp_path / "run"
    write_outputs(geo_run, out)
    damage(out)
    assert cli.main(["export", str(out), "--outbox", str(tmp_path / "box")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out / 'run.json'}, field 'files': {message}")
    assert not (tmp_path / "box" / "bump").exists() or not list(
        (tmp_path / "box" / "bump").glob("forecast-*"))


KILLED_RUN = textwrap.dedent("""
    import os, sys, pickle
    import tsunami.runner as runner
    result = pickle.load(open({result!r}, "rb"))
    for ds in result.fields.values():
        ds.attrs["history"] = "a second run"  # different outputs from the first
    real = runner.write_netcdf
    def die_in_the_middle(ds, path):
        if path.name.startswith("town_"):
            os._exit(9)  # killed while writing the run folder
        return real(ds, path)
    runner.write_netcdf = die_in_the_middle
    runner.write_outputs(result, {out!r})
""")


def test_a_run_killed_while_writing_leaves_the_previous_folder_whole(tmp_path, geo_run):
    """Bad 5: new fields beside the old run.json after a kill."""
    import pickle

    from tsunami.products import read_run
    from tsunami.runner import write_outputs

    out = tmp_path / "run"
    write_outputs(geo_run, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    saved = tmp_path / "result.pickle"
    slim = dataclasses.replace(geo_run, model=None)
    saved.write_bytes(pickle.dumps(slim))
    script = KILLED_RUN.format(result=str(saved), out=str(out))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert done.returncode == 9, done.stderr.decode()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert list(tmp_path.glob(".run.staging-*"))  # the killed run's staging, beside
    towns, _ = read_run(out)
    assert sorted(towns) == ["coast", "harbour"]
    write_outputs(geo_run, out)  # the next run removes what the dead one left
    assert not list(tmp_path.glob(".run.*"))


def test_a_folder_that_is_not_a_run_is_never_replaced(tmp_path, geo_run):
    from tsunami.runner import write_outputs

    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(InputError, match="holds files that are not a tsunami run's "
                                         r"\(thesis.tex\)"):
        write_outputs(geo_run, tmp_path)
    assert (tmp_path / "thesis.tex").read_text() == "years of work"


def test_cli_refuses_an_explicit_forecast_that_is_published(tmp_path, geo_run, capsys):
    from tsunami.runner import write_outputs

    out = tmp_path / "run"
    write_outputs(geo_run, out)
    box = tmp_path / "box"
    assert cli.main(["export", str(out), "--outbox", str(box), "--forecast", "5"]) == 0
    item = (box / "bump" / "forecast-005" / "item.json").read_bytes()
    capsys.readouterr()
    assert cli.main(["export", str(out), "--outbox", str(box), "--forecast", "5"]) == 2
    assert "forecast-005 is already published" in capsys.readouterr().err
    assert (box / "bump" / "forecast-005" / "item.json").read_bytes() == item
