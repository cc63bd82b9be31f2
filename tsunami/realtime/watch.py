"""The watch service: feeds and alerts in, published forecasts out, unattended.

Data flow (README, "Running the watch service")::

    feeds (folder, HTTP, replay) -> RecordStore (committed before use)
        -> quality control -> triggers
    alert file -> event -> forecast 1: the alert ensemble (tsunami.realtime.ensemble),
        over ``alert_duration_s``; if that is shorter than ``duration_s`` and no gauge
        inversion is published, the ensemble again over the full duration (an extension)
    trigger, then every ``update_s`` of data -> forecast 2, 3, ...: inversion of the
        quality-controlled records (tsunami.realtime.inversion)
    each forecast: nested run (tsunami.runner) -> damage -> outbox (tsunami.pipeline)

One loop (:meth:`WatchService.step`) does everything but receiving: feeds commit records
into the store from their own threads (the HTTP endpoint, a replay) or from the loop (the
watched folder), and the loop reads what arrived after the last sequence number it
handled. The service's own state (events, triggers, every forecast with its outbox
number and status, the last record handled) lives in SQLite (``STATE/watch.db``; WAL,
``synchronous=FULL``) beside the record store (``STATE/records.db``), so a service killed
at any moment resumes where it stopped: records committed are never lost, a forecast that
was running is run again (with its reserved number if still free), and one already
published is never published again.

Scheduling. Forecasts share the host's cores through :mod:`tsunami.cores` (the kernels of
all runs together never use more threads than cores); the service runs one forecast at a
time and keeps ingesting during a run (every few seconds from the simulation's callback).
A newer inversion forecast of the same event supersedes a queued older one at once, and a
running one when the running one has done less than ``supersede_fraction`` of the time
its forecasts take (the last one measured): its result would then come later than the
newer forecast's shortly after. That time counts from the first attempt a newer one
stopped, so superseding delays a publication by at most that fraction of a forecast
however often new data windows arrive. The alert forecast (the first, safe-side product) is
never superseded. An extension waits behind any queued inversion (and goes back to the
queue when one comes while it runs) and is dropped once an inversion is published: that
one covers the full duration with better information. An event's first inversion
simulates forecast 1's window when more inversions will follow (the ten-minute budget);
the next covers the full duration, and only such a one drops the extension.

The ingest pass that the simulation's callback runs costs 1 ms of CPU (SQLite reads of
the new records and the queue); it runs at most every ``INGEST_DURING_RUN_S`` of wall
time whatever the step rate, and the callback does nothing else between passes
(measured, README "The ten-minute budget": the same nested run took the same CPU
seconds inside the service as through :func:`tsunami.runner.run`).

Timings. Every forecast records the wall time of each stage (receipt, trigger,
inversion, simulation, damage, export) and when each ended after the origin time, on the
service's clock: the wall clock in operation; with a replay, the time of the newest record
received (so a replay at any speed reports what the stages would take in real time on
this machine).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr

from tsunami.atomic import atomic_path
from tsunami.errors import Finding, InputError, input_warning
from tsunami.fields import netcdf_encoding
from tsunami.gauges import Gauge
from tsunami.grid import great_circle_m
from tsunami.names import check_name
from tsunami.products import latest_forecast
from tsunami.products.outbox import (
    published_forecasts,
    release_forecast_number,
    reserve_forecast_number,
)
from tsunami.realtime.alerts import EarthquakeAlert, read_alert
from tsunami.realtime.database import MIN_POINT_DEPTH, UnitSourceDatabase, nearest_water
from tsunami.realtime.ensemble import envelope, percentile_maps, rank
from tsunami.realtime.inversion import GaugeRecord, invert
from tsunami.realtime.qc import clean
from tsunami.realtime.records import BAD, NS_PER_S, Record, iso, to_datetime
from tsunami.realtime.stations import StationCatalogue
from tsunami.realtime.store import RecordStore
from tsunami.realtime.triggers import AnomalyTrigger, DartDetector, TriggerEvent
from tsunami.realtime.watchconfig import WatchConfig
from tsunami.region import Region
from tsunami.scenario import FaultSource, Scenario
from tsunami.source.okada import FaultModel

log = logging.getLogger("tsunami.watch")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY, origin_ns INTEGER NOT NULL, alert TEXT NOT NULL,
    received_ns INTEGER NOT NULL, trigger_ns INTEGER, trigger TEXT) STRICT;
CREATE TABLE IF NOT EXISTS forecasts (
    event_id TEXT NOT NULL, kind TEXT NOT NULL, data_ns INTEGER NOT NULL,
    number INTEGER, status TEXT NOT NULL, folder TEXT, detail TEXT,
    queued_ns INTEGER NOT NULL, PRIMARY KEY (event_id, kind, data_ns)) STRICT;
CREATE TABLE IF NOT EXISTS alert_files (path TEXT PRIMARY KEY, signature TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS alert_revisions (
    event_id TEXT NOT NULL, received_ns INTEGER NOT NULL, alert TEXT NOT NULL,
    action TEXT NOT NULL, reason TEXT NOT NULL) STRICT;
"""

#: What the products say of a source estimated without any earthquake alert.
GAUGE_ONLY = "gauge inversion, no earthquake alert"

#: Seconds of wall time between two ingest passes while a forecast runs.
INGEST_DURING_RUN_S = 2.0


class Superseded(Exception):
    """Raised inside a running forecast that a newer one replaces."""


class Deferred(Superseded):
    """Raised inside a running extension when an inversion forecast is queued: the
    extension goes back to the queue behind it."""


@dataclass(frozen=True)
class Forecast:
    """A forecast the service has queued, run or published."""

    event_id: str
    kind: str  # "alert", "extension" (forecast 1 over the full duration) or "inversion"
    data_ns: int  # alert and extension: the alert's receipt; inversion: end of the data
    number: int | None
    status: str  # queued, running, published, superseded, failed
    folder: str | None
    detail: dict

    @property
    def id(self) -> str:
        return f"{self.event_id}/{self.kind}@{self.data_ns}"


class WatchState:
    """The service's state in SQLite (module doc)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                   timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def execute(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def get(self, key: str, default: str | None = None) -> str | None:
        rows = self.execute("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else default

    def put(self, key: str, value: str) -> None:
        self.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value))

    def forecasts(self, event_id: str | None = None, status: str | None = None
                  ) -> list[Forecast]:
        query = ("SELECT event_id, kind, data_ns, number, status, folder, detail FROM "
                 "forecasts WHERE (?1 IS NULL OR event_id=?1) AND (?2 IS NULL OR status=?2) "
                 "ORDER BY queued_ns, data_ns")
        return [Forecast(e, k, d, n, s, f, json.loads(x or "{}"))
                for e, k, d, n, s, f, x in self.execute(query, (event_id, status))]

    def queue(self, event_id: str, kind: str, data_ns: int) -> bool:
        """Queue a forecast unless it exists; True if queued now."""
        rows = self.execute("INSERT INTO forecasts (event_id, kind, data_ns, status, "
                            "queued_ns) VALUES (?,?,?,'queued',?) ON CONFLICT DO NOTHING "
                            "RETURNING 1", (event_id, kind, data_ns, time.time_ns()))
        return bool(rows)

    def update(self, f: Forecast, **changes) -> Forecast:
        new = replace(f, **changes)
        self.execute("UPDATE forecasts SET number=?, status=?, folder=?, detail=? WHERE "
                     "event_id=? AND kind=? AND data_ns=?",
                     (new.number, new.status, new.folder, json.dumps(new.detail),
                      f.event_id, f.kind, f.data_ns))
        return new


@dataclass
class Event:
    """An earthquake the service forecasts for: opened by an alert, or by a gauge
    trigger without one (``alert`` None, ``origin_ns`` estimated: README, "A trigger
    without an alert") until an alert of the same time joins it."""

    event_id: str
    origin_ns: int
    alert: EarthquakeAlert | None
    received_ns: int
    trigger_ns: int | None = None
    trigger: str = ""


class ReplayClock:
    """Time on a replay's axis: the newest record time received (ns)."""

    def __init__(self) -> None:
        self.now_ns = 0

    def advance(self, time_ns: int) -> None:
        self.now_ns = max(self.now_ns, int(time_ns))

    def __call__(self) -> int:
        return self.now_ns


class WatchService:
    """Feeds -> store -> QC -> triggers -> forecasts -> outbox (module doc).

    ``clock``: ns since the epoch (default the wall clock; :class:`ReplayClock` for
    replays). The Python API: :meth:`ingest` (records from any feed), :meth:`alert` (an
    alert read elsewhere), :meth:`step` (one pass: poll the folder and alert feeds,
    handle new records, queue and run due forecasts), :meth:`run` (loop until stopped).
    """

    def __init__(self, config: WatchConfig, clock: Callable[[], int] | None = None) -> None:
        self.config = config
        self.clock = clock or time.time_ns
        config.state.mkdir(parents=True, exist_ok=True)
        self.state = WatchState(config.state / "watch.db")
        self.store = RecordStore(config.state / "records.db")
        self.catalogue = StationCatalogue.load(config.stations)
        self.region = Region.load(config.region)
        self.db = UnitSourceDatabase(config.database)
        self.db.load_sea_surfaces()  # once, at start (a few seconds for big zones)
        self.outbox = config.outbox
        #: Forecast points that should have a gauge but have none: id -> why (published).
        self.region, self.point_gaps = self._with_point_gauges(self.region)
        self._dry_warned: set[str] = set()  # points whose gauge stayed dry, logged once
        self._detector = DartDetector()
        self._anomaly: dict[str, AnomalyTrigger] = {}
        #: The clock (s) of the ingest cadence and of superseding (tests replace it).
        self.monotonic: Callable[[], float] = time.monotonic
        self._last_ingest = 0.0
        self.ingest_passes = 0  # ingest passes since the start (the loop's and the runs')
        self._running: Forecast | None = None
        self._running_started = 0.0
        # When the first of a run of superseded attempts started (None: no such run).
        self._superseding_since: float | None = None
        self.folder_watcher = None
        if config.folder is not None:
            from tsunami.realtime.feeds import FolderWatcher

            config.folder.mkdir(parents=True, exist_ok=True)
            self.folder_watcher = FolderWatcher(config.folder, self.catalogue, self.store,
                                                epoch=config.replay_epoch)
        self._resume()

    # -- start and stop ---------------------------------------------------------------
    def _resume(self) -> None:
        """After a restart: forecasts left running are queued again (module doc)."""
        for f in self.state.forecasts(status="running"):
            done = published_forecasts(self.outbox / f.event_id).get(f.number)
            if done is not None:  # stopped between publishing and recording it
                log.info("forecast %s was published before the service stopped", f.id)
                self.state.update(f, status="published", folder=str(done))
                continue
            log.warning("forecast %s was interrupted (service stopped during it): queued "
                        "again", f.id)
            self.state.update(f, status="queued")
        self._supersede_queued()

    def close(self) -> None:
        self.store.close()
        self.state.close()

    def __enter__(self) -> WatchService:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _with_point_gauges(self, region: Region) -> tuple[Region, dict[str, str]]:
        """The region with a gauge at every forecast point inside its outer grid (for the
        coastal maxima each forecast publishes), unless it has one of that name; and the
        points that get none though they should (a point of one of its towns outside the
        outer grid, a point on a grid without water), with the reason (published with
        every forecast).

        A gauge stands where the point is if its cell is at least ``MIN_POINT_DEPTH`` deep
        on the finest grid holding it (the grid the gauge reads), else at the nearest cell
        that is, as the database moves its points on its own grid (with an input warning):
        a gauge on land records nothing. Points outside the outer grid are of towns the
        region does not cover, unless the point names one of its towns: that town's
        coastal maximum would be missing, so the service warns (and keeps running)."""
        names = {g.name for g in region.gauges}
        towns = {t.name for t in region.towns}
        grids = [region.grid(spec.name) for spec in region.grids]
        depths: dict[str, np.ndarray] = {}
        extra, gaps = [], {}
        for pid in self.db.forecast_points:
            p = self.db.points[pid]
            if pid in names:
                continue
            where = f"forecast point {pid!r} of town {p.town!r} at ({p.lon:.4f}, {p.lat:.4f})"
            if not grids[0].contains(p.lon, p.lat):  # (its cells' edges, not centres)
                # (Region.load keeps every town's extent inside the outer grid: only the
                # point's town can tie a point outside it to this region)
                if p.town in towns:
                    gaps[pid] = (f"outside the outer grid {grids[0].name!r} "
                                 f"{grids[0].bounds_text} of region {region.path.name}")
                    input_warning(Finding(str(self.db.path), f"forecast point {pid}",
                                          f"{where} lies {gaps[pid]}: the town's coastal "
                                          "maximum is not published (move the point into "
                                          "the grid or widen the grid)"), None)
                continue
            grid = min((g for g in grids if g.contains(p.lon, p.lat)),
                       key=lambda g: g.min_spacing())
            if grid.name not in depths:  # (its DEM findings: every run reports them)
                depths[grid.name] = -region.elevation(grid, findings=[])
            water = nearest_water(grid, depths[grid.name], p.lon, p.lat)
            if water is None:
                gaps[pid] = (f"no cell of grid {grid.name!r} of region {region.path.name} "
                             f"is {MIN_POINT_DEPTH:g} m deep")
                input_warning(Finding(str(self.db.path), f"forecast point {pid}",
                                      f"{where}: {gaps[pid]}: no gauge, no coastal "
                                      "maximum"), None)
                continue
            if water.distance_m > 0:
                input_warning(Finding(str(self.db.path), f"forecast point {pid}",
                                      f"{where} {water.describe()} (region "
                                      f"{region.path.name}; its coastal maximum is taken "
                                      "there)"), None)
            extra.append(Gauge(pid, water.lon, water.lat))
        return (replace(region, gauges=list(region.gauges) + extra) if extra else region,
                gaps)

    # -- input ------------------------------------------------------------------------
    def ingest(self, records: Iterable[Record]) -> int:
        """Commit records from any feed (before anything uses them); returns how many
        were new. They are handled at the next :meth:`step`."""
        return len(self.store.insert(list(records)).inserted)

    def alert(self, alert: EarthquakeAlert | str | Path,
              received_ns: int | None = None) -> Event | None:
        """Take an earthquake alert. One of a new earthquake opens an event and queues
        forecast 1; one of an event already open (an alert whose origin lies within
        ``same_event_s`` of the event's, or before the trigger of an event opened by
        the gauges) is a revision: see :meth:`_revise`. Drills, tests and cancellations
        are logged and ignored."""
        if not isinstance(alert, EarthquakeAlert):
            alert = read_alert(alert)
        received = self.clock() if received_ns is None else received_ns
        if received < alert.origin_time_ns:  # a replay that has sent nothing after it yet
            received = max(alert.issued_ns or alert.origin_time_ns, alert.origin_time_ns)
        if not alert.actionable:
            log.info("alert ignored: %s", alert.summary())
            return None
        known = self._event_of(alert)
        if known is not None:
            return self._revise(known, alert, received)
        event_id = self._event_id(alert.origin_time_ns, alert.event_id)
        self.state.execute("INSERT INTO events (event_id, origin_ns, alert, received_ns) "
                           "VALUES (?,?,?,?)", (event_id, alert.origin_time_ns,
                                                json.dumps(_alert_dict(alert)), received))
        self.state.queue(event_id, "alert", received)
        log.info("event %s from alert: %s; forecast 1 queued", event_id, alert.summary())
        event = self.event(event_id)
        self._trigger(event, set(self.store.stations()))  # records that came before it
        return self.event(event_id)

    def _event_id(self, origin_ns: int, alert_id: str) -> str:
        return check_name(self.config.event_id.format(
            origin=to_datetime(origin_ns), alert=alert_id), None, "event_id")

    def _event_of(self, alert: EarthquakeAlert) -> Event | None:
        """The open event ``alert`` belongs to (method :meth:`alert`), if any."""
        window = round(self.config.same_event_s * NS_PER_S)
        t = alert.origin_time_ns
        same_id = self.event(self._event_id(t, alert.event_id))
        if same_id is not None:
            return same_id
        for event in self.events():
            if event.alert is None:  # the gauges' origin is an estimate: the alert's
                # origin must precede the trigger and lie within the window before it
                if event.origin_ns - window <= t <= (event.trigger_ns or event.origin_ns):
                    return event
            elif abs(t - event.origin_ns) <= window:
                return event
        return None

    def _revise(self, event: Event, alert: EarthquakeAlert, received: int) -> Event:
        """A later alert of an open event (README, "Revised alerts").

        It changes the forecast materially when it is the event's first alert (an event
        the gauges opened) or when its magnitude differs from the one the event's
        forecasts use by ``revision_magnitude`` or more, or its hypocentre lies more than
        ``revision_km`` away (straight-line distance, depth included). A material
        revision becomes the event's alert (its origin time replaces a gauge estimate);
        it queues a new alert-ensemble forecast (replacing one still queued) while no
        inversion forecast is published; after that the gauge inversion is the better
        information, so the revision only passes its hypocentre on to the inversion
        (rupture delays). Every revision is logged and recorded in ``alert_revisions``."""
        cfg = self.config
        base = event.alert
        if base is None:
            material, reason = True, "first alert of an event opened by the gauges"
        else:
            dm = alert.magnitude - base.magnitude
            km = _hypocentre_distance_km(base, alert, cfg.ensemble.default_depth_m)
            material = abs(dm) >= cfg.revision_magnitude or km > cfg.revision_km
            reason = (f"magnitude {base.magnitude:g} -> {alert.magnitude:g} ({dm:+.2f}), "
                      f"hypocentre moved {km:.1f} km (material: |dM| >= "
                      f"{cfg.revision_magnitude:g} or > {cfg.revision_km:g} km)")
        published = [f for f in self.state.forecasts(event.event_id, "published")
                     if f.kind == "inversion"]
        if not material:
            action = "recorded"
        elif published:
            action = "prior"
        else:
            action = "forecast"
        if material:
            self.state.execute("UPDATE events SET alert=?, origin_ns=? WHERE event_id=?",
                               (json.dumps(_alert_dict(alert)), alert.origin_time_ns,
                                event.event_id))
        if action == "forecast":
            for f in self.state.forecasts(event.event_id, "queued"):
                if f.kind in ("alert", "extension"):
                    self.state.update(f, status="superseded",
                                      detail={"reason": "a revised alert came"})
            self.state.queue(event.event_id, "alert", received)
        self.state.execute("INSERT INTO alert_revisions VALUES (?,?,?,?,?)",
                           (event.event_id, received, json.dumps(_alert_dict(alert)), action,
                            reason))
        what = {"recorded": "recorded (no material change)",
                "prior": "the event's alert now (inversion forecasts already published: "
                         "its hypocentre goes to the inversion, no alert forecast)",
                "forecast": "a new alert-ensemble forecast queued"}[action]
        log.info("event %s: alert %s: %s; %s", event.event_id, alert.summary(), reason, what)
        return self.event(event.event_id)

    def revisions(self, event_id: str) -> list[dict]:
        """The later alerts of an event: received (ns), alert, action, reason."""
        return [{"received_ns": r, "alert": json.loads(a), "action": act, "reason": why}
                for r, a, act, why in self.state.execute(
                    "SELECT received_ns, alert, action, reason FROM alert_revisions WHERE "
                    "event_id=? ORDER BY received_ns", (event_id,))]

    def event(self, event_id: str) -> Event | None:
        rows = self.state.execute("SELECT event_id, origin_ns, alert, received_ns, "
                                  "trigger_ns, trigger FROM events WHERE event_id=?",
                                  (event_id,))
        if not rows:
            return None
        e, o, a, r, t, why = rows[0]
        alert = json.loads(a)
        return Event(e, o, None if alert is None else EarthquakeAlert(**alert), r, t,
                     why or "")

    def events(self) -> list[Event]:
        return [self.event(e) for (e,) in self.state.execute(
            "SELECT event_id FROM events ORDER BY origin_ns")]

    # -- the loop ---------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> None:
        """Step every ``poll_s`` until ``stop`` is set."""
        stop = stop or threading.Event()
        while not stop.is_set():
            busy = self.step()
            if not busy:
                stop.wait(self.config.poll_s)

    def step(self) -> bool:
        """One pass (module doc); True if a forecast ran."""
        self._ingest_pass()
        self._schedule()
        f = self._next()
        if f is None:
            return False
        self._run_forecast(f)
        return True

    def _ingest_pass(self) -> None:
        """Poll the folder and alert feeds, then handle the records that arrived."""
        self._last_ingest = self.monotonic()
        self.ingest_passes += 1
        if self.folder_watcher is not None:
            self.folder_watcher.poll()
        if self.config.alerts is not None:
            self._poll_alerts()
        self._handle_new_records()

    def _poll_alerts(self) -> None:
        folder = self.config.alerts
        with contextlib.suppress(FileNotFoundError):
            for path in sorted(p for p in folder.iterdir() if p.is_file()
                               and not p.name.startswith(".")):
                st = path.stat()
                signature = f"{st.st_size}:{st.st_mtime_ns}"
                seen = self.state.execute("SELECT signature FROM alert_files WHERE path=?",
                                          (str(path),))
                if seen and seen[0][0] == signature:
                    continue
                try:
                    self.alert(path)
                except InputError as exc:  # a bad alert never stops the service
                    log.error("alert file refused: %s", exc)
                self.state.execute("INSERT OR REPLACE INTO alert_files VALUES (?,?)",
                                   (str(path), signature))

    def _handle_new_records(self) -> None:
        """QC and triggers for the stations with new records, for every open event."""
        last = int(self.state.get("last_seq", "0"))
        new = self.store.since(last)
        if not new:
            return
        stations = {r.station for _, r in new}
        if isinstance(self.clock, ReplayClock):
            self.clock.advance(max(r.time_ns for _, r in new))
        now = self.clock()
        events = self.events()
        open_events = [e for e in events  # forecasting window still open
                       if now <= e.origin_ns + round(self.config.last_s * NS_PER_S)]
        for event in open_events:
            if event.trigger_ns is None:
                self._trigger(event, stations)
        # A tsunami rings for hours after its event closes: the gauges alone open no
        # event until ``rearm_s`` after the last one (a new earthquake has its alert).
        rearm = round(self.config.rearm_s * NS_PER_S)
        if not any(now <= e.origin_ns + rearm for e in events):
            self._standby(now)
        self.state.put("last_seq", str(new[-1][0]))

    def _standby(self, now: int) -> None:
        """No event open: the gauge trigger on every database station's last
        ``standby_s`` of records (de-tided by the ``pre_event_s`` before them). If it
        fires, the gauges open an event of their own (README, "A trigger without an
        alert")."""
        cfg = self.config
        ref = now - round(cfg.standby_s * NS_PER_S)
        have = set(self.store.stations())
        series = {sid: self._clean(sid, ref) for sid in self.db.stations
                  if sid in have and sid in self.catalogue}
        if cfg.trigger == "dart":
            fired = [t for sid, s in series.items()
                     for t in self._detector.update(sid, s.time_ns, s.eta, s.flags)
                     if t.time_ns >= ref]
            if len({t.stations for t in fired}) < cfg.trigger_stations:
                fired = []
        else:
            fired = AnomalyTrigger(cfg.threshold_m, cfg.trigger_stations,
                                   after_ns=ref).update(series)
        if fired:
            self._open_from_gauges(min(fired, key=lambda t: t.time_ns), series, now)

    def _open_from_gauges(self, trigger: TriggerEvent, series: dict, now: int) -> None:
        """An event without an alert. Its origin time is estimated as the earliest,
        over the triggering stations, of (onset of the wave at the station) - (the
        shortest travel time from any unit source of the database to it): the latest
        origin the first arrival allows, since the source lies somewhere on the zone.
        ``origin_margin_s`` in the configuration replaces that travel time."""
        cfg = self.config
        estimates = {}
        for sid in trigger.stations:
            onset = _onset_ns(series[sid], trigger.time_ns, cfg.threshold_m)
            margin = (cfg.origin_margin_s if cfg.origin_margin_s is not None
                      else self._shortest_travel_s(sid))
            estimates[sid] = (onset, margin, onset - round(margin * NS_PER_S))
        sid, (onset, margin, origin) = min(estimates.items(), key=lambda kv: kv[1][2])
        event_id = self._event_id(origin, "gauges")
        if self.event(event_id) is not None:
            return
        note = (f"{trigger}; no earthquake alert: origin estimated {iso(origin)} = onset at "
                f"{sid} ({iso(onset)}) - {margin:.0f} s travel time")
        self.state.execute("INSERT INTO events (event_id, origin_ns, alert, received_ns, "
                           "trigger_ns, trigger) VALUES (?,?,?,?,?,?)",
                           (event_id, origin, "null", now, trigger.time_ns, note))
        log.warning("event %s opened by the gauges: %s", event_id, note)

    def _shortest_travel_s(self, station: str) -> float:
        """Seconds from the origin until the first unit source's wave reaches
        ``station`` in the database (5 % of that unit's own peak there)."""
        k = list(self.db.points).index(station)
        eta = np.abs(self.db.eta[:, k, :])
        reached = eta >= 0.05 * eta.max(axis=1, keepdims=True)
        first = np.where(reached.any(axis=1), reached.argmax(axis=1), eta.shape[1] - 1)
        return float(self.db.times[first.min()])

    def _trigger(self, event: Event, stations: set[str]) -> None:
        cfg = self.config
        origin = event.origin_ns
        fired: list[TriggerEvent] = []
        series = {}
        for sid in sorted(stations):
            if sid not in self.catalogue or sid not in self.db.points:
                continue
            s = self._clean(sid, origin)
            series[sid] = s
            if cfg.trigger == "dart":
                fired += [t for t in self._detector.update(sid, s.time_ns, s.eta, s.flags)
                          if t.time_ns >= origin]
        if cfg.trigger == "anomaly":
            trigger = self._anomaly.setdefault(event.event_id, AnomalyTrigger(
                cfg.threshold_m, cfg.trigger_stations, after_ns=origin))
            fired += trigger.update(series)
        if cfg.trigger == "dart" and cfg.trigger_stations > 1:
            fired = [] if len({t.stations for t in fired}) < cfg.trigger_stations else fired
        if not fired:
            return
        first = min(fired, key=lambda t: t.time_ns)
        self.state.execute("UPDATE events SET trigger_ns=?, trigger=? WHERE event_id=?",
                           (first.time_ns, str(first), event.event_id))
        log.info("event %s: %s", event.event_id, first)

    def _clean(self, station: str, origin_ns: int, end_ns: int | None = None,
               upto_seq: int | None = None):
        start = origin_ns - round(self.config.pre_event_s * NS_PER_S)
        data = self.store.records(station, start, end_ns, upto_seq)
        return clean(data, self.catalogue[station], origin_ns)

    # -- scheduling -------------------------------------------------------------------
    def _schedule(self) -> None:
        """Queue the inversion forecasts that are due: at the trigger, then every
        ``update_s`` of data up to ``last_s`` after the origin."""
        cfg = self.config
        now = self.clock()
        for event in self.events():
            if event.trigger_ns is None:
                continue
            step = round(cfg.update_s * NS_PER_S)
            last = event.origin_ns + round(cfg.last_s * NS_PER_S)
            due = [t for t in range(event.trigger_ns, min(now, last) + 1, step)]
            if due:
                self.state.queue(event.event_id, "inversion", due[-1])
        self._supersede_queued()

    def _supersede_queued(self) -> None:
        """Of the queued inversions of an event, only the newest stays queued; a queued
        extension goes once an inversion of its event is published."""
        newest: dict[str, Forecast] = {}
        for f in self.state.forecasts(status="queued"):
            if f.kind == "extension":
                if self._full_inversion_published(f.event_id):
                    self.state.update(f, status="superseded", detail={
                        "reason": "a gauge inversion covers the full duration"})
                continue
            if f.kind != "inversion":
                continue
            old = newest.get(f.event_id)
            if old is None or f.data_ns > old.data_ns:
                if old is not None:
                    self.state.update(old, status="superseded")
                newest[f.event_id] = f
            else:
                self.state.update(f, status="superseded")

    def _next(self) -> Forecast | None:
        """Alert forecasts first (the first product), then the newest inversion, then
        extensions."""
        queued = self.state.forecasts(status="queued")
        for kind in ("alert", "inversion", "extension"):
            of_kind = [f for f in queued if f.kind == kind]
            if of_kind:
                return max(of_kind, key=lambda f: f.data_ns) if kind == "inversion" \
                    else of_kind[0]
        return None

    def _check_supersede(self, model) -> None:
        """Simulation callback: keep ingesting; stop a run a newer forecast replaces."""
        if self.monotonic() - self._last_ingest < INGEST_DURING_RUN_S:
            return
        self._ingest_pass()
        self._schedule()
        running = self._running
        if running is None or running.kind == "alert":
            return
        queued = [f for f in self.state.forecasts(running.event_id, "queued")
                  if f.kind == "inversion"]
        if running.kind == "extension":
            if queued:
                raise Deferred(f"forecast {running.id} deferred: an inversion forecast "
                               f"(data up to {iso(queued[-1].data_ns)}) comes first")
            return
        newer = [f for f in queued if f.data_ns > running.data_ns]
        if not newer:
            return
        # Measured from the first attempt that a newer one superseded, not from this
        # attempt: with data windows arriving faster than supersede_fraction of a run,
        # each attempt would otherwise be stopped in turn and nothing published until the
        # windows stop (seen on the Okushiri bench: four attempts in a row). So the
        # delay that superseding adds is bounded by supersede_fraction of a forecast, and
        # without a measured forecast time nothing running is stopped.
        expected = float(self.state.get("forecast_wall_s", "nan"))
        elapsed = self.monotonic() - (self._superseding_since or self._running_started)
        if np.isfinite(expected) and elapsed < self.config.supersede_fraction * expected:
            if self._superseding_since is None:
                self._superseding_since = self._running_started
            raise Superseded(f"forecast {running.id} superseded by data up to "
                             f"{iso(newer[-1].data_ns)} after {elapsed:.0f} s")

    # -- running a forecast -----------------------------------------------------------
    def _run_forecast(self, f: Forecast) -> None:
        event = self.event(f.event_id)
        event_dir = self.outbox / event.event_id
        number = None
        if f.number is not None:  # a restart: take the same number back if still free
            with contextlib.suppress(FileExistsError):
                number = reserve_forecast_number(event_dir, f.number)
        if number is None:
            number = reserve_forecast_number(event_dir)
        f = self.state.update(f, number=number, status="running")
        self._running, self._running_started = f, self.monotonic()
        log.info("forecast %d of %s (%s) started", number, event.event_id, f.kind)
        try:
            folder, detail = self._forecast(f, event, number)
        except Deferred as exc:
            release_forecast_number(event_dir, number)
            self.state.update(f, status="queued", number=None)
            log.info("%s", exc)
            return
        except Superseded as exc:
            release_forecast_number(event_dir, number)
            self.state.update(f, status="superseded", detail={"reason": str(exc)})
            log.info("%s", exc)
            return
        except Exception as exc:  # a failed forecast must not stop the service
            self._superseding_since = None
            release_forecast_number(event_dir, number)
            self.state.update(f, status="failed", detail={"error": f"{type(exc).__name__}: "
                                                                   f"{exc}"})
            log.exception("forecast %d of %s failed", number, event.event_id)
            return
        finally:
            self._running = None
        self._superseding_since = None
        self.state.update(f, status="published", folder=str(folder), detail=detail)
        # What a forecast of the full duration takes (forecast 1 may simulate less).
        self.state.put("forecast_wall_s", str(detail["wall_s"] * self.config.duration_s
                                              / detail["simulated_s"]))
        log.info("forecast %d of %s published: %s", number, event.event_id, folder)
        if f.kind == "alert" and self.config.alert_window_s < self.config.duration_s:
            # Forecast 1 covered a window only: the full duration follows, from the
            # gauges if an inversion is published by then, else from this extension.
            self.state.queue(f.event_id, "extension", f.data_ns)
            self._supersede_queued()

    def _forecast(self, f: Forecast, event: Event, number: int) -> tuple[Path, dict]:
        from tsunami.pipeline import publish_forecast
        from tsunami.runner import run

        cfg = self.config
        start, start_cpu = time.perf_counter(), time.process_time()
        # An extension starts when the forecasts before it are done, not at the alert.
        begun_ns = max(f.data_ns, self.clock()) if f.kind == "extension" else f.data_ns
        passes_before = self.ingest_passes
        origin = event.origin_ns
        work = cfg.state / "work" / f"{event.event_id}-{number:03d}"
        work.mkdir(parents=True, exist_ok=True)
        stages: dict[str, float] = {}  # wall seconds per stage
        cpu: dict[str, float] = {}  # CPU seconds of the process (all threads) per stage
        props: dict = {"tsunami:forecast_kind": f.kind,
                       "tsunami:alert": None if event.alert is None else
                       _alert_dict(event.alert, brief=True)}
        copies: list[Path] = []
        towns = {t.name for t in self.region.towns}
        duration = cfg.alert_window_s if f.kind == "alert" or self._first_of_several(f) \
            else cfg.duration_s
        props["tsunami:simulated_s"] = duration
        if f.kind in ("alert", "extension"):
            with _stage("ranking", stages, cpu):
                ensemble = rank(event.alert, self.db, towns, cfg.ensemble)
            ensemble.write_csv(work / "ensemble.csv")
            copies.append(work / "ensemble.csv")
            with _stage("percentile_maps", stages, cpu):
                maps = percentile_maps(ensemble, self.db, work, cfg.ensemble.percentile_maps)
            copies += [path for _, path in maps.values()]
            runs = [(f"{event.event_id}_alert_member{m.index}",
                     FaultSource("fault", m.fault_model(ensemble.law))) for m in
                    ensemble.decisive]
            description = (
                f"Forecast {number} from the earthquake alert ({event.alert.summary()}): "
                f"ENVELOPE of {len(runs)} decisive member(s) of an ensemble of "
                f"{len(ensemble.members)} scaling-law faults ({ensemble.law}) spanning the "
                "hypocentre's position on the fault, strike, dip, magnitude (incl. "
                "saturation) and the scaling scatter; members ranked by their offshore "
                "maxima in front of each town from the unit-source database, the decisive "
                "ones run with the full nested model. Errs on the safe side by design; "
                "ensemble percentiles at the forecast points in ensemble.csv.")
            if maps:
                description += (
                    " Percentile maps (" + ", ".join(p.name for _, p in maps.values())
                    + "): maximum sea-surface height OFFSHORE, on the unit-source "
                    "database's grid with the linear equations, of the ensemble member at "
                    "that percentile of severity (its heights in front of the towns); one "
                    "earthquake per map, not cell-wise percentiles, not inundation.")
            pct = ensemble.percentiles()
            props.update({
                "tsunami:ensemble_members": len(ensemble.members),
                "tsunami:ensemble_law": ensemble.law,
                "tsunami:ensemble_decisive": [
                    {"member": m.index, "Mw": round(m.magnitude, 2),
                     "slip_m": round(m.fault.slip, 2), "length_km": round(m.fault.length / 1e3,
                                                                           1),
                     "width_km": round(m.fault.width / 1e3, 1), "strike": m.fault.strike,
                     "dip": m.fault.dip, "hypocentre_position": m.hypocentre_position}
                    for m in ensemble.decisive],
                "tsunami:ensemble_percentile_maps": {
                    "method": "member at the percentile rank of severity (mean ranking "
                              "height at the towns' forecast points over the ensemble "
                              "median), maximum sea-surface height of its linear run on "
                              "the unit-source database's grid; not cell-wise percentiles",
                    **{f"p{q:g}": {"asset": path.stem, "member": m.index,
                                   "Mw": round(m.magnitude, 2)}
                       for q, (m, path) in maps.items()}},
                "tsunami:ensemble_percentiles_m": {
                    p: dict(zip(("p50", "p84", "p95", "max"), [round(v, 3) for v in q],
                                strict=True)) for p, q in pct.items()},
            })
            props["tsunami:source_basis"] = "earthquake alert (scaling-law ensemble)"
            if duration < cfg.duration_s:
                description += _window_note(
                    duration, cfg.duration_s, "forecast 1 comes within the ten-minute budget",
                    "The full duration follows in the next forecast: the gauge inversion or, "
                    "without one, this ensemble run again.")
            elif f.kind == "extension":
                description += (
                    f" EXTENSION: the ensemble of the first alert forecast, which simulated "
                    f"{cfg.alert_window_s / 60:g} minutes, run again over the full "
                    f"{duration / 60:g} minutes (no gauge inversion published yet).")
            revised = [r for r in self.revisions(event.event_id) if r["action"] == "forecast"]
            if revised:
                props["tsunami:alert_revision"] = revised[-1]["reason"]
                description += f" Revised alert: {revised[-1]['reason']}."
            source_type = "alert_ensemble_envelope"
            a = event.alert
            headline = (f"Source: alert ({a.magnitude_type} {a.magnitude:g}), envelope of "
                        f"{len(runs)} of {len(ensemble.members)} ensemble faults"
                        + (" (full duration)" if f.kind == "extension" else ""))
        else:
            with _stage("inversion", stages, cpu):
                estimate, windows = self._invert(f, event, number)
            with _stage("source_products", stages, cpu):
                files = estimate.write(work / "source")
            copies += [files[k] for k in ("slip_table", "initial_sea_surface", "slip_map",
                                          "fit", "summary") if k in files]
            runs = [(f"{event.event_id}_inversion_{number:03d}", FaultSource(
                "subfaults", FaultModel(tuple(s for s in estimate.subfaults() if s.slip > 0),
                                        {"source": "inversion", "Mw": estimate.magnitude},
                                        None)))]
            basis = GAUGE_ONLY if event.alert is None else "gauge inversion"
            description = (
                f"Forecast {number} (source: {basis}): source estimated from "
                f"{len(estimate.stations)} offshore "
                f"gauges with records up to {estimate.time_s / 60:.1f} min after the origin "
                f"(Mw {estimate.magnitude:.2f}, variance reduction "
                f"{estimate.variance_reduction:.2f}); slip of every unit source in slip.csv "
                "(tsunami run reads it), initial sea surface in initial_sea_surface.tif.")
            if event.alert is None:
                description += (f" The event was opened by the gauge trigger without an "
                                f"earthquake alert; origin time estimated ({event.trigger}).")
            if duration < cfg.duration_s:
                description += _window_note(
                    duration, cfg.duration_s, "the first forecast from the gauges comes "
                    "within the ten-minute budget, as forecast 1", "The next inversion covers "
                    "the full duration.")
            props["tsunami:source_basis"] = basis
            props["tsunami:origin_time_basis"] = ("estimated from the gauges" if
                                                  event.alert is None else "earthquake alert")
            props.update({
                "tsunami:source_Mw": round(float(estimate.magnitude), 3),
                "tsunami:source_moment_Nm": float(estimate.moment_Nm),
                "tsunami:misfit": {"variance_reduction": _round(estimate.variance_reduction),
                                   "rms_m": _round(estimate.rms_m)},
                "tsunami:data_until_s": round(estimate.time_s, 1),
                "tsunami:stations": {s: {"window_s": [round(a, 1), round(b, 1)]}
                                     for s, (a, b) in estimate.windows.items()},
                "tsunami:stations_ignored": estimate.ignored,
                "tsunami:records": windows,
            })
            source_type = "inversion"
            headline = (f"Source: gauge inversion, {len(estimate.stations)} gauges to "
                        f"{estimate.time_s / 60:.1f} min, Mw {estimate.magnitude:.2f}")
        if duration < cfg.duration_s:
            headline += f"; first {duration / 60:g} of {cfg.duration_s / 60:g} min simulated"
        results = []
        with _stage("simulation", stages, cpu):
            for name, source in runs:
                scenario = Scenario(name=name, path=cfg.path, duration=duration,
                                    source=source, origin_time=to_datetime(origin))
                results.append(run(self.region, scenario, callbacks=[self._check_supersede]))
        # Every run checks the same region (a town at sea, DEM holes): each warning once.
        input_warnings = list(dict.fromkeys(w for r in results for w in r.input_warnings))
        if input_warnings:
            log.warning("forecast %d of %s: %d input warning(s), published with it: %s",
                        number, event.event_id, len(input_warnings),
                        "; ".join(input_warnings))
        fields = envelope([r.towns for r in results])
        maxima, dry = _coastal_maxima(results, self.db)
        for p in dry.keys() - self._dry_warned:
            log.warning("forecast point %s: %s; its coastal maximum is left out (said in "
                        "the products: tsunami:coastal_maxima_missing)", p, dry[p])
        self._dry_warned |= dry.keys()
        if f.kind == "inversion":
            fields, maxima, note = self._no_early_downgrade(event, estimate.time_s, fields,
                                                            maxima, props)
            description += note
            kept = props.get("tsunami:no_early_downgrade")
            if kept:
                headline += (f"; raised to forecast {kept['enveloped_with_forecast']} where "
                             "higher (no early downgrade)")
        else:  # kept for the inversions that may not lower it yet
            self._keep_alert_forecast(event.event_id, number, fields, maxima)
        # (a point the kept alert forecast has a value for has one in the envelope)
        missing = {p: why for p, why in {**self.point_gaps, **dry}.items() if p not in maxima}
        sampled = {g.name: (g.x, g.y) for g in self.region.gauges}
        (work / "coastal_maxima.csv").write_text(_maxima_csv(maxima, missing, self.db,
                                                             sampled))
        copies.append(work / "coastal_maxima.csv")
        props["tsunami:coastal_maxima_m"] = {p: round(v, 3) for p, v in maxima.items()}
        if missing:
            props["tsunami:coastal_maxima_missing"] = missing
        # Stage ends after the origin: receipt on the service's clock, then measured wall.
        received = (begun_ns - origin) / NS_PER_S
        timeline = {"receipt": received}
        if event.trigger_ns is not None and f.kind == "inversion":
            timeline["trigger"] = (event.trigger_ns - origin) / NS_PER_S
        elapsed = received + (time.perf_counter() - start)
        timeline["source"] = received + stages.get("inversion", stages.get("ranking", 0.0))
        timeline["simulation"] = elapsed
        props["tsunami:stage_end_after_origin_s"] = {k: round(v, 1) for k, v in
                                                     timeline.items()}
        timings = {f"{k}_s": v for k, v in stages.items()}
        folder = publish_forecast(
            self.region, fields, self.outbox, event_id=event.event_id,
            scenario=runs[0][0] if len(runs) == 1 else f"{event.event_id}_alert_envelope",
            origin_time=to_datetime(origin), source_type=source_type, timings_s=timings,
            forecast_number=number, copies=copies, description=description,
            properties=props, headline=headline, input_warnings=input_warnings)
        wall = time.perf_counter() - start
        item = json.loads((folder / "item.json").read_text())
        published = received + wall
        detail = {"wall_s": wall, "published_after_origin_s": published,
                  "stages_s": item["properties"]["tsunami:timings_s"],
                  "cpu_s": {**{k: round(v, 2) for k, v in cpu.items()},
                            "total": round(time.process_time() - start_cpu, 2)},
                  "steps": {k: sum(r.steps.get(k, 0) for r in results)
                            for k in results[0].steps},
                  "ingest_passes": self.ingest_passes - passes_before,
                  "steps_by_kernel_threads": _sum_counts(r.steps_by_threads for r in results),
                  "simulated_s": duration,
                  "stage_end_after_origin_s": {**timeline, "publication": published},
                  "description": item["properties"]["description"],  # as published
                  "input_warnings": input_warnings}
        self._log_forecast(event, number, f, detail)
        return folder, detail

    # -- no early downgrade ---------------------------------------------------------------
    def _alert_fields_path(self, event_id: str, number: int) -> Path:
        return self.config.state / "alert_forecasts" / event_id / f"forecast-{number:03d}.nc"

    def _keep_alert_forecast(self, event_id: str, number: int, fields: dict,
                             maxima: dict[str, float]) -> None:
        """Keep an alert (or extension) forecast's town fields and coastal maxima in the
        state folder (one NetCDF file, a group per town, written atomically): an
        inversion with too few records is published as the envelope with them
        (:meth:`_no_early_downgrade`), also after a restart."""
        with atomic_path(self._alert_fields_path(event_id, number)) as tmp:
            for k, (town, ds) in enumerate(fields.items()):
                ds.to_netcdf(tmp, mode="w" if k == 0 else "a", group=town,
                             encoding=netcdf_encoding(ds))
            with netCDF4.Dataset(tmp, "a") as nc:
                nc.setncattr("coastal_maxima_m", json.dumps(maxima))
                nc.setncattr("towns", json.dumps(list(fields)))

    def _kept_alert_forecast(self, event_id: str) -> tuple[int, dict, dict] | None:
        """The newest published alert or extension forecast kept for the event: its
        number, town fields and coastal maxima (None if there is none)."""
        kept = sorted((f.number for f in self.state.forecasts(event_id, "published")
                       if f.kind in ("alert", "extension")), reverse=True)
        for number in kept:
            path = self._alert_fields_path(event_id, number)
            if not path.exists():
                continue
            with netCDF4.Dataset(path) as nc:
                maxima = json.loads(nc.getncattr("coastal_maxima_m"))
                towns = json.loads(nc.getncattr("towns"))
            fields = {}
            for town in towns:
                with xr.open_dataset(path, group=town) as ds:
                    fields[town] = ds.load()
            return number, fields, maxima
        return None

    def _no_early_downgrade(self, event: Event, data_until_s: float, fields: dict,
                            maxima: dict[str, float], props: dict
                            ) -> tuple[dict, dict[str, float], str]:
        """An inversion of fewer than ``downgrade_after_s`` of records may raise the alert
        forecast but not lower it: its fields enveloped cell by cell with the newest
        published alert forecast's (largest maxima, earliest arrival), its coastal maxima
        point by point. Returns the fields and maxima to publish and the products' note.

        Why: the first minutes of offshore records constrain a great earthquake poorly.
        In the 2011 replay (README, "Tohoku replay") the inversion at 8.2 minutes gave
        Mw 8.26 for the Mw 9.0 earthquake and 0.75 m off Kamaishi where forecast 1 said
        22 m; on the Okushiri bench forecast 2 (6.2 minutes of records) reaches Aida's
        K = 1.40 against the surveyed runup, forecast 1 1.14. Operational practice is the
        same: warnings are raised at once and lowered only when observations allow."""
        cfg = self.config
        if data_until_s >= cfg.downgrade_after_s:
            return fields, maxima, ""
        try:
            kept = self._kept_alert_forecast(event.event_id)
        except (OSError, KeyError, ValueError, AttributeError) as exc:
            # (a damaged file must not stop the inversion's forecast)
            log.error("the kept alert forecast of %s cannot be read (%s); the inversion "
                      "is published without the envelope", event.event_id, exc)
            return fields, maxima, (" The no-early-downgrade envelope was NOT applied: the "
                                    "alert forecast kept for it could not be read.")
        if kept is None:
            return fields, maxima, ""
        number, alert_fields, alert_maxima = kept
        if set(alert_fields) != set(fields) or any(
                alert_fields[t]["max_eta"].shape != fields[t]["max_eta"].shape for t in fields):
            # (the region was changed between the two forecasts, a restart with another
            # configuration): say so rather than fail or mix grids
            log.warning("forecast %d of %s: its fields do not match this region's towns; "
                        "the inversion is published without the envelope", number,
                        event.event_id)
            return fields, maxima, (f" The no-early-downgrade envelope with forecast {number} "
                                    "was NOT applied: its fields do not match this region.")
        props["tsunami:inversion_coastal_maxima_m"] = {p: round(v, 3)
                                                       for p, v in maxima.items()}
        props["tsunami:no_early_downgrade"] = {
            "enveloped_with_forecast": number, "data_until_s": round(data_until_s, 1),
            "downgrade_after_s": cfg.downgrade_after_s}
        merged = dict(alert_maxima)
        for p, v in maxima.items():
            merged[p] = max(v, merged.get(p, v))
        note = (f" NO EARLY DOWNGRADE: the inversion has records up to "
                f"{data_until_s / 60:.1f} min after the origin, fewer than the "
                f"{cfg.downgrade_after_s / 60:g} minutes after which it may lower the alert "
                f"forecast; the maps, damage and coastal maxima published are the ENVELOPE "
                f"of this inversion and forecast {number} (the alert ensemble): cell by "
                "cell the larger maxima and the earlier arrival. The inversion's own "
                "heights at the forecast points: tsunami:inversion_coastal_maxima_m.")
        return envelope([fields, alert_fields]), merged, note

    def _first_of_several(self, f: Forecast) -> bool:
        """An inversion that is its event's first (none published before it) and that more
        will follow (its data end ``update_s`` or more before ``last_s``): it simulates
        forecast 1's window, like forecast 1, and the next covers the full duration. On
        the Okushiri bench the full hour took forecast 2 to 635 s after the origin; the
        window brings it inside ten minutes (README, "The ten-minute budget")."""
        cfg = self.config
        if f.kind != "inversion" or cfg.alert_window_s >= cfg.duration_s:
            return False
        if any(p.kind == "inversion" for p in self.state.forecasts(f.event_id, "published")):
            return False
        last = self.event(f.event_id).origin_ns + round(cfg.last_s * NS_PER_S)
        return f.data_ns + round(cfg.update_s * NS_PER_S) <= last

    def _full_inversion_published(self, event_id: str) -> bool:
        """Whether an inversion of the full duration is published for the event."""
        return any(p.kind == "inversion" and p.detail.get("simulated_s", 0.0)
                   >= self.config.duration_s for p in self.state.forecasts(event_id,
                                                                           "published"))

    def _invert(self, f: Forecast, event: Event, number: int):
        """Inversion of the QC'd records that had arrived up to ``f.data_ns``; the data
        used (per station window, arrival sequence and digest) is recorded in the store
        under the forecast's id."""
        origin = event.origin_ns
        upto = self.store.last_seq()
        records, windows = {}, []
        start = origin - round(self.config.pre_event_s * NS_PER_S)
        for sid in self.db.stations:
            if sid not in self.catalogue:
                continue
            s = self._clean(sid, origin, f.data_ns + 1, upto)
            if not len(s.time_ns):
                continue
            records[sid] = GaugeRecord((s.time_ns - origin) / NS_PER_S, s.eta,
                                       (s.flags & int(BAD)))
            windows.append((sid, start, f.data_ns + 1))
        if not records:
            raise RuntimeError("no station of the database has records for this event")
        a = event.alert  # none for an event the gauges opened: no rupture delays
        hypocentre = None if a is None else (
            a.longitude, a.latitude, a.depth_m if a.depth_m is not None
            else self.config.ensemble.default_depth_m)
        estimate = invert(self.db, records, (f.data_ns - origin) / NS_PER_S,
                          hypocentre=hypocentre)
        forecast_id = f"{event.event_id}/forecast-{number:03d}"
        rows = self.store.record_forecast_inputs(forecast_id, windows, upto)
        used = {r.station: {"from": iso(r.start_ns), "to": iso(r.end_ns), "records":
                            r.n_records, "upto_seq": r.upto_seq, "sha256": r.digest}
                for r in rows}
        return estimate, {"forecast_id": forecast_id, "stations": used}

    def _log_forecast(self, event: Event, number: int, f: Forecast, detail: dict) -> None:
        """One JSON line per forecast in ``STATE/forecasts.log``."""
        line = json.dumps({"event_id": event.event_id, "forecast": number, "kind": f.kind,
                           "issued": iso(time.time_ns()), **detail})
        with open(self.config.state / "forecasts.log", "a") as out:
            out.write(line + "\n")

    # -- reading what was published -----------------------------------------------------
    def latest(self, event_id: str) -> Path | None:
        return latest_forecast(self.outbox / event_id)

    def published(self, event_id: str) -> dict[int, Path]:
        return published_forecasts(self.outbox / event_id)


def _sum_counts(counts: Iterable[dict[int, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            out[str(k)] = out.get(str(k), 0) + v
    return out


@contextlib.contextmanager
def _stage(name: str, wall: dict[str, float], cpu: dict[str, float]):
    """Time a forecast's stage: wall seconds into ``wall``, the process's CPU seconds
    (every thread: the kernels' too) into ``cpu``."""
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        wall[name] = time.perf_counter() - t0
        cpu[name] = time.process_time() - c0


def _coastal_maxima(results, db: UnitSourceDatabase) -> tuple[dict[str, float],
                                                                dict[str, str]]:
    """Largest sea-surface height (m) at each forecast point over the runs, and the
    points whose gauge stayed dry in every run, with the reason: they have no value
    (never NaN, which strict JSON readers refuse)."""
    out, dry = {}, {}
    for p in db.forecast_points:
        series = [r.gauges.sel(gauge=p) for r in results
                  if r.gauges is not None and p in r.gauges["gauge"].values]
        if not series:
            continue
        eta = np.concatenate([s["eta"].values for s in series])
        if np.isfinite(eta).any():
            out[p] = float(np.nanmax(eta))
        else:
            g = series[0]
            dry[p] = (f"its gauge at ({float(g['gauge_x']):.4f}, {float(g['gauge_y']):.4f}) "
                      f"on grid {str(g['grid'].values)!r} stayed dry throughout the run(s)")
    return out, dry


def _maxima_csv(maxima: dict[str, float], missing: dict[str, str],
                db: UnitSourceDatabase, sampled: dict[str, tuple[float, float]]) -> str:
    """coastal_maxima.csv: each point's maximum (m) where the database lists it and where
    its gauge stood (``sampled``: point -> lon, lat, degrees), which a GIS user plots."""
    rows = ["# maximum sea-surface height (m above the still water level) at the forecast "
            "points off each town, from the forecast's nested run(s) (EPSG:4326)",
            "# lon, lat: the point as the database lists it (degrees); sampled_lon, "
            "sampled_lat: where its gauge stood, the value's position (degrees): the "
            f"nearest cell at least {MIN_POINT_DEPTH:g} m deep when the point's cell is not, "
            "or the region's own gauge of that name; moved_m: the distance between the "
            "two (m, great circle)"]
    rows += [f"# no value at {p} ({db.points[p].town}): {why}" for p, why in missing.items()]
    rows.append("point,town,lon,lat,max_eta_m,sampled_lon,sampled_lat,moved_m")
    for p, v in maxima.items():
        q = db.points[p]
        where = ",,"  # (a value kept from an earlier forecast on a region since changed)
        if p in sampled:
            x, y = sampled[p]
            where = f"{x:.5f},{y:.5f},{great_circle_m(q.lon, q.lat, x, y):.0f}"
        rows.append(f"{p},{q.town},{q.lon:.5f},{q.lat:.5f},{v:.3f},{where}")
    return "\n".join(rows) + "\n"


def _alert_dict(alert: EarthquakeAlert, brief: bool = False) -> dict:
    data = {k: getattr(alert, k) for k in alert.__dataclass_fields__}
    if brief:
        keep = ("event_id", "longitude", "latitude", "depth_m", "magnitude",
                "magnitude_type", "strike", "dip", "rake", "agency")
        data = {k: data[k] for k in keep}
        data["origin_time"] = iso(alert.origin_time_ns)
    return data


def _round(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None


def _onset_ns(series, trigger_ns: int, threshold_m: float) -> int:
    """The start of the wave that fired the trigger at a station: the first sample of
    the run of good samples above a quarter of the threshold that leads up to the
    trigger time (the trigger time itself if there is none)."""
    t = series.time_ns
    above = series.good() & (np.abs(np.nan_to_num(series.eta)) > 0.25 * threshold_m)
    j = int(np.searchsorted(t, trigger_ns, side="right")) - 1
    if j < 0 or not above[j]:
        return int(trigger_ns)
    while j > 0 and above[j - 1]:
        j -= 1
    return int(t[j])


def _hypocentre_distance_km(a: EarthquakeAlert, b: EarthquakeAlert,
                            default_depth_m: float) -> float:
    """Straight-line distance (km) between two alerts' hypocentres (a sphere of the
    mean Earth radius; a missing depth is the default depth)."""
    surface = great_circle_m(a.longitude, a.latitude, b.longitude, b.latitude) / 1e3
    dz = ((b.depth_m if b.depth_m is not None else default_depth_m)
          - (a.depth_m if a.depth_m is not None else default_depth_m)) / 1e3
    return float(np.hypot(surface, dz))


def _window_note(simulated_s: float, full_s: float, why: str, next_step: str) -> str:
    """The products' warning that a forecast simulated less than the full duration."""
    return (f" SIMULATED WINDOW: the first {simulated_s / 60:g} minutes after the origin "
            f"only (of the {full_s / 60:g} the forecasts cover), so that {why}; maxima of "
            f"waves after it are missing. {next_step}")
