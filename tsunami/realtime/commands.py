"""``tsunami feeds ...``, ``tsunami database ...``, ``tsunami invert``, ``tsunami watch``: thin
command-line shells over the real-time API (feeds, unit-source database, inversion).

    tsunami feeds replay FILE ... --catalogue CAT --db DB [--epoch ISO] [--speed X]
    tsunami feeds watch FOLDER --catalogue CAT --db DB [--epoch ISO] [--interval S]
    tsunami feeds serve --catalogue CAT --db DB --tokens TOKENS.toml [--host H --port P]
    tsunami feeds qc --catalogue CAT --db DB [--origin ISO | --alert FILE] [--out DIR]
    tsunami feeds alert FILE ...
    tsunami feeds bench [--records N]
    tsunami database build ZONE.toml REGION.toml STATIONS --out DB [--points CSV]
    tsunami database info DB
    tsunami invert DB RECORD.csv ... --at SECONDS --out DIR [--hypocentre LON LAT DEPTH_M]
    tsunami watch CONFIG.toml [--once]
"""

from __future__ import annotations

import asyncio
import csv
import logging
import math
import tempfile
import threading
import time
from pathlib import Path

from tsunami.errors import InputError


def add_feeds_parser(commands) -> None:
    """Add ``feeds`` and its sub-commands to the main parser's sub-parsers."""
    feeds = commands.add_parser("feeds", help="gauge feeds, quality control, triggers, "
                                "alerts (real time)").add_subparsers(dest="feeds",
                                                                     required=True)

    def store_options(p) -> None:
        p.add_argument("--catalogue", type=Path, required=True,
                       help="station catalogue (TOML or CSV)")
        p.add_argument("--db", type=Path, required=True, help="record store (SQLite file)")

    p = feeds.add_parser("replay", help="replay recorded gauge files into the store")
    p.add_argument("files", type=Path, nargs="+", help="gauge files (station from the name)")
    store_options(p)
    p.add_argument("--format", choices=["csv", "ndbc_dart", "two_column"],
                   help="file format (default: from suffix and content)")
    p.add_argument("--epoch", help="time 0 of files in seconds (ISO 8601, UTC)")
    p.add_argument("--speed", type=float, default=math.inf,
                   help="times real time (default: as fast as possible; 1 = real time)")
    p.set_defaults(handler=_replay)

    p = feeds.add_parser("watch", help="read files dropped into or appended in a folder")
    p.add_argument("folder", type=Path)
    store_options(p)
    p.add_argument("--epoch", help="time 0 of files in seconds (ISO 8601, UTC)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between passes")
    p.set_defaults(handler=_watch)

    p = feeds.add_parser("serve", help="HTTP ingest endpoint (JSON batches, bearer tokens)")
    store_options(p)
    p.add_argument("--tokens", type=Path, required=True,
                   help='TOML file: [clients] name = "token" (>= 16 characters)')
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--max-body", type=int, default=1_000_000, help="bytes per request")
    p.add_argument("--max-records", type=int, default=20_000, help="records per request")
    p.add_argument("--rate", type=float, default=10.0, help="requests/s per client")
    p.add_argument("--burst", type=int, default=20, help="burst of requests per client")
    p.set_defaults(handler=_serve)

    p = feeds.add_parser("qc", help="quality-control stored records; report flags and "
                         "triggers")
    store_options(p)
    p.add_argument("--origin", help="earthquake origin time (ISO 8601, UTC)")
    p.add_argument("--alert", type=Path, help="take the origin time from this alert")
    p.add_argument("--station", action="append", help="station id (default: all stored)")
    p.add_argument("--threshold", type=float, default=0.1,
                   help="anomaly trigger threshold (m)")
    p.add_argument("--stations", type=int, default=1,
                   help="anomaly trigger: stations that must exceed it")
    p.add_argument("--out", type=Path, help="write <station>_clean.csv and qc_log.txt here")
    p.set_defaults(handler=_qc)

    p = feeds.add_parser("alert", help="read earthquake alerts (JSON, QuakeML, JMA XML)")
    p.add_argument("files", type=Path, nargs="+")
    p.set_defaults(handler=_alert)

    p = feeds.add_parser("bench", help="ingest throughput into SQLite (direct and HTTP)")
    p.add_argument("--records", type=int, default=100_000)
    p.set_defaults(handler=_bench)


def _open(args):
    from tsunami.realtime.stations import StationCatalogue
    from tsunami.realtime.store import RecordStore

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    return StationCatalogue.load(args.catalogue), RecordStore(args.db)


def _replay(args) -> int:
    from tsunami.realtime.feeds import read_files, replay

    catalogue, store = _open(args)
    records, problems = read_files(args.files, catalogue, args.epoch, args.format)
    store.log_problems(problems)
    for p in problems:
        print(f"problem: {p}")
    totals = {"inserted": 0, "duplicates": 0, "conflicts": 0}

    def sink(batch) -> None:
        result = store.insert(batch)
        totals["inserted"] += len(result.inserted)
        totals["duplicates"] += result.duplicates
        totals["conflicts"] += result.conflicts

    start = time.perf_counter()
    replay(records, sink, speed=args.speed)
    print(f"{len(records)} records from {len(args.files)} file(s) in "
          f"{time.perf_counter() - start:.1f} s: {totals['inserted']} new, "
          f"{totals['duplicates']} already stored, {totals['conflicts']} conflicting; "
          f"store {args.db} holds {store.count()}")
    store.close()
    return 0


def _watch(args) -> int:
    from tsunami.realtime.feeds import FolderWatcher

    catalogue, store = _open(args)
    if not args.folder.is_dir():
        raise InputError(args.folder, None, "not a folder")
    watcher = FolderWatcher(args.folder, catalogue, store, epoch=args.epoch,
                            on_records=lambda r: print(f"{len(r)} new record(s)"))
    print(f"watching {args.folder} (Ctrl-C to stop)")
    try:
        watcher.run(args.interval, threading.Event())
    finally:
        store.close()
    return 0


def _serve(args) -> int:
    from tsunami.realtime.ingest import IngestConfig, load_tokens, serve

    catalogue, store = _open(args)
    config = IngestConfig(load_tokens(args.tokens), args.max_body, args.max_records,
                          args.rate, args.burst)
    logging.getLogger("tsunami").setLevel(logging.INFO)
    print(f"ingest endpoint on http://{args.host}:{args.port}/v1/records "
          f"(store {args.db}; Ctrl-C to stop)", flush=True)
    try:
        asyncio.run(serve(store, catalogue, config, args.host, args.port))
    finally:
        store.close()
    return 0


def _qc(args) -> int:
    from tsunami.atomic import atomic_path
    from tsunami.realtime.alerts import read_alert
    from tsunami.realtime.qc import clean
    from tsunami.realtime.records import Flag, iso, to_ns
    from tsunami.realtime.triggers import AnomalyTrigger, DartDetector

    catalogue, store = _open(args)
    origin = None
    if args.alert:
        origin = read_alert(args.alert).origin_time_ns
    elif args.origin:
        try:
            origin = to_ns(args.origin)
        except ValueError as exc:
            raise InputError(None, "--origin", str(exc)) from None
    stations = args.station or store.stations()
    unknown = [s for s in stations if s not in catalogue]
    if unknown:
        raise InputError(args.catalogue, "id", f"station(s) {unknown} not in the catalogue")
    series, notes = {}, []
    names = ["MISSING", "DUPLICATE", "OUT_OF_ORDER", "SPIKE", "STEP", "SEISMIC", "RANGE"]
    print(f"{'station':8} {'samples':>8} " + " ".join(f"{n[:8]:>8}" for n in names)
          + "  tide; first DART trigger")
    detector = DartDetector()
    for sid in stations:
        data = store.records(sid)
        s = clean(data, catalogue[sid], origin, conflicts=len(store.conflicts(sid)))
        series[sid] = s
        notes += s.notes
        counts = dict(s.counts)
        counts["DUPLICATE"] = counts.get("DUPLICATE", 0) + len(store.conflicts(sid))
        events = detector.update(sid, s.time_ns, s.eta, s.flags)
        trigger = (f"{iso(events[0].time_ns)} ({events[0].value_m:+.3f} m)" if events
                   else "none")
        print(f"{sid:8} {len(data):8d} " + " ".join(f"{counts.get(n, 0):8d}" for n in names)
              + f"  {s.tide_method}; {trigger}")
        if args.out:
            with atomic_path(args.out / f"{sid}_clean.csv") as tmp, open(tmp, "w",
                                                                        newline="") as f:
                w = csv.writer(f)
                w.writerow(["time_utc", "eta_m", "flags"])
                for t, e, fl in zip(s.time_ns, s.eta, s.flags, strict=True):
                    w.writerow([iso(int(t)), f"{e:.4f}", "|".join(Flag.names(int(fl)))])
    for event in AnomalyTrigger(args.threshold, args.stations, after_ns=origin).update(
            series):
        print(event)
    if args.out:
        with atomic_path(args.out / "qc_log.txt") as tmp:
            tmp.write_text("".join(f"{n}\n" for n in notes), encoding="utf-8")
        print(f"clean series and QC log in {args.out}")
    store.close()
    return 0


def _alert(args) -> int:
    from tsunami.realtime.alerts import read_alert

    for path in args.files:
        print(read_alert(path).summary())
    return 0


def _bench(args) -> int:
    """Records/s into SQLite: direct batches (FULL and NORMAL) and through HTTP."""
    from tsunami.realtime.records import Record
    from tsunami.realtime.stations import Station, StationCatalogue
    from tsunami.realtime.store import RecordStore

    n = args.records
    t0 = 1_299_822_360 * 10**9
    records = [Record(f"S{i % 10}", t0 + (i // 10) * 10**9, float(i), "m",
                      "bottom_pressure", "bench") for i in range(n)]
    print(f"ingest of {n} records (wall and CPU s; re-measure on a quiet machine)")
    with tempfile.TemporaryDirectory() as tmp:
        for sync in ("FULL", "NORMAL"):
            for batch in (1, 100, 10_000):
                count = min(n, 500) if batch == 1 else n
                store = RecordStore(Path(tmp) / f"{sync}{batch}.db", synchronous=sync)
                wall, cpu = time.perf_counter(), time.process_time()
                for i in range(0, count, batch):
                    store.insert(records[i:i + batch])
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                store.close()
                print(f"  direct, synchronous={sync:6} batch {batch:6d}: "
                      f"{count / wall:10.0f} records/s ({wall:.2f} s wall, {cpu:.2f} s CPU)")
        catalogue = StationCatalogue(None, {f"S{i}": Station(f"S{i}", 142.0, 38.0, 1000.0,
                                                             "bottom_pressure")
                                            for i in range(10)})
        rate = asyncio.run(_bench_http(Path(tmp) / "http.db", catalogue, n))
        print(f"  HTTP, synchronous=FULL, batches of 1000: {rate:10.0f} records/s")
    return 0


async def _bench_http(db: Path, catalogue, n: int) -> float:
    import aiohttp

    from tsunami.realtime.ingest import IngestConfig, serve
    from tsunami.realtime.store import RecordStore

    token = "bench-token-0123456789"
    store = RecordStore(db)
    stop = asyncio.Event()
    config = IngestConfig({token: "bench"}, max_body_bytes=10_000_000, rate_per_s=1e6,
                          burst=10**6)
    server = asyncio.create_task(serve(store, catalogue, config, "127.0.0.1", 18765,
                                       stop=stop))
    await asyncio.sleep(0.5)
    t0 = 1_299_822_360 * 10**9
    bodies = [{"records": [{"station": f"S{j % 10}", "time": t0 + (j // 10) * 10**9,
                            "value": float(j)} for j in range(i, min(i + 1000, n))]}
              for i in range(0, n, 1000)]
    headers = {"Authorization": f"Bearer {token}"}
    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        for body in bodies:
            async with session.post("http://127.0.0.1:18765/v1/records", json=body,
                                    headers=headers) as r:
                r.raise_for_status()
    rate = n / (time.perf_counter() - start)
    stop.set()
    await server
    store.close()
    return rate


def add_source_parsers(commands) -> None:
    """Add ``database`` (build, info) and ``invert`` to the main parser's sub-parsers."""
    p = commands.add_parser("database", help="unit-source databases for source estimation")
    database = p.add_subparsers(dest="database_command", required=True)
    b = database.add_parser("build", help="compute a unit-source database (dask)")
    b.add_argument("zone", type=Path, help="fault zone (TOML)")
    b.add_argument("region", type=Path, help="region (TOML): its outer grid is used")
    b.add_argument("stations", type=Path, help="station catalogue (TOML or CSV)")
    b.add_argument("--out", type=Path, required=True, help="database folder")
    b.add_argument("--points", type=Path, help="forecast points CSV (id,lon,lat[,town])")
    b.add_argument("--duration", type=float, default=3600.0,
                   help="length of the Green's functions in s (default 3600)")
    b.add_argument("--interval", type=float, default=15.0,
                   help="their sampling interval in s (default 15)")
    b.add_argument("--scheduler", help="address of a dask scheduler (default: a "
                   "LocalCluster on this machine)")
    b.add_argument("--workers", type=int, help="LocalCluster workers (default: one per core)")
    b.add_argument("--threads-per-task", type=int, default=1,
                   help="kernel threads each unit source runs on (default 1)")
    b.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    b.set_defaults(handler=_database_build)
    b = database.add_parser("info", help="describe a unit-source database")
    b.add_argument("database", type=Path, help="database folder or file")
    b.set_defaults(handler=_database_info)

    p = commands.add_parser("invert", help="estimate the source from gauge records")
    p.add_argument("database", type=Path, help="unit-source database folder")
    p.add_argument("records", type=Path, nargs="+",
                   help="records as CSV time_s,eta_m[,flag] (time after the origin, "
                   "de-tided sea surface in m); the file name (without .csv) is the "
                   "station id, or give STATION=PATH")
    p.add_argument("--at", type=float, required=True,
                   help="time of the estimate, s after the origin: data up to it are used")
    p.add_argument("--out", type=Path, required=True, help="folder for the estimate")
    p.add_argument("--hypocentre", type=float, nargs=3, metavar=("LON", "LAT", "DEPTH_M"),
                   help="hypocentre from the alert: each unit starts to slip when a rupture "
                   "front reaches it")
    p.add_argument("--rupture-velocity", type=float, default=2000.0,
                   help="speed of that rupture front in m/s (default 2000)")
    p.set_defaults(handler=_invert)


def _database_build(args) -> int:
    from tsunami.realtime.database import build_database, read_forecast_points
    from tsunami.realtime.stations import StationCatalogue
    from tsunami.realtime.zone import FaultZone
    from tsunami.region import Region

    zone = FaultZone.load(args.zone)
    region = Region.load(args.region)
    stations = StationCatalogue.load(args.stations)
    points = read_forecast_points(args.points) if args.points else []
    if not (args.duration > 0 and 0 < args.interval <= args.duration):
        raise InputError(None, "--interval", "need 0 < --interval <= --duration")
    report = build_database(zone, region, stations, args.out, forecast_points=points,
                            duration=args.duration, interval=args.interval,
                            scheduler=args.scheduler, workers=args.workers,
                            kernel_threads=args.threads_per_task,
                            progress=not args.no_progress)
    print(report.summary())
    return 0


def _database_info(args) -> int:
    from tsunami.realtime.database import UnitSourceDatabase

    db = UnitSourceDatabase(args.database)
    a = db.attrs
    print(f"{db.path}: zone {db.zone} ({len(db)} unit sources, {a['zone_rows']} rows x "
          f"{a['zone_columns']} columns, rigidity {db.rigidity:.3g} Pa)")
    print(f"  region {a['region']}, grid {db.grid.describe()}, dt {a['dt_s']:.3f} s")
    print(f"  Green's functions: {a['duration_s']:.0f} s every {a['interval_s']:g} s; "
          f"{a['equations']}")
    print(f"  stations: {', '.join(db.stations) or '-'}")
    print(f"  forecast points: {', '.join(db.forecast_points) or '-'}")
    print(f"  built {a['created']} in {a['build_wall_s']:.0f} s with tsunami "
          f"{a['code_version']}; {db.path.stat().st_size / 1e6:.1f} MB")
    return 0


def _invert(args) -> int:
    from tsunami.realtime.database import UnitSourceDatabase
    from tsunami.realtime.inversion import InversionSettings, invert, read_record_csv

    if not args.rupture_velocity > 0:
        raise InputError(None, "--rupture-velocity", "must be positive")
    if args.hypocentre is not None:
        lon, lat, depth = args.hypocentre
        if not (-180 <= lon <= 360 and -90 <= lat <= 90 and 0 <= depth <= 700e3):
            raise InputError(None, "--hypocentre", f"not a longitude, latitude and depth "
                             f"(m): {args.hypocentre}")
    db = UnitSourceDatabase(args.database)
    records = {}
    for item in args.records:
        text = str(item)
        station, path = (text.split("=", 1) if "=" in text and not Path(text).exists()
                         else (item.stem, text))
        if station in records:
            raise InputError(path, None, f"a second record for station {station!r}")
        records[station] = read_record_csv(Path(path))
    estimate = invert(db, records, args.at,
                      InversionSettings(rupture_velocity=args.rupture_velocity),
                      hypocentre=tuple(args.hypocentre) if args.hypocentre else None)
    files = estimate.write(args.out)
    print(estimate.title())
    print(f"  rms misfit {estimate.rms_m:.3f} m; regularisation "
          f"{estimate.regularisation.get('rule')}, lambda "
          f"{estimate.regularisation.get('lambda', float('nan')):.3g}; inversion "
          f"{estimate.inversion_wall_s:.2f} s")
    for s in estimate.stations:
        print(f"  {s.station}: window {s.window_start_s:.0f}-{s.window_end_s:.0f} s, "
              f"variance reduction {100 * s.variance_reduction:.0f} %")
    for station, why in estimate.ignored.items():
        print(f"  {station} not used: {why}")
    print(f"estimate in {args.out.resolve()}:")
    for path in files.values():
        print(f"  {path.name}")
    return 0


def add_watch_parser(commands) -> None:
    """Add ``watch`` (the unattended service) to the main parser's sub-parsers."""
    p = commands.add_parser("watch", help="the unattended watch service: feeds and alerts "
                            "in, published forecasts out")
    p.add_argument("config", type=Path, help="watch configuration (TOML)")
    p.add_argument("--once", action="store_true",
                   help="stop once the feeds are read and no forecast is due (batch replay)")
    p.set_defaults(handler=_watch_service)


def _watch_service(args) -> int:
    import signal

    from tsunami.realtime.feeds import read_files, replay
    from tsunami.realtime.ingest import IngestConfig, load_tokens, serve
    from tsunami.realtime.watch import ReplayClock, WatchService
    from tsunami.realtime.watchconfig import WatchConfig
    from tsunami.warmup import compile_in_background

    config = WatchConfig.load(args.config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # Quality control runs on every pass: its notes are in the forecasts' records, not
    # worth a log line each time.
    logging.getLogger("tsunami.realtime.qc").setLevel(logging.WARNING)
    replaying = bool(config.replay)
    service = WatchService(config, clock=ReplayClock() if replaying else None)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threads = []
    if replaying:
        records, problems = read_files(config.replay, service.catalogue, config.replay_epoch)
        service.store.log_problems(problems)
        speed = config.replay_speed or math.inf
        threads.append(threading.Thread(target=replay, args=(records, service.ingest),
                                        kwargs={"speed": speed, "stop": stop}, daemon=True))
    if config.http_port is not None:
        ingest = IngestConfig(load_tokens(config.http_tokens))

        async def endpoint() -> None:
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            threading.Thread(target=lambda: (stop.wait(), loop.call_soon_threadsafe(
                done.set)), daemon=True).start()
            await serve(service.store, service.catalogue, ingest, config.http_host,
                        config.http_port, stop=done)

        threads.append(threading.Thread(target=asyncio.run, args=(endpoint(),),
                                        daemon=True))
    for t in threads:
        t.start()
    # Forecast 1 must not pay a cold compile (about 1.5 minutes of one core): the kernels
    # are compiled, or loaded from the cache `tsunami compile` filled, on a spare core now.
    compiler = compile_in_background(("float32", "leapfrog"), ("float32", "fv2"))
    print(f"watching (state {config.state}, outbox {config.outbox}); SIGTERM or Ctrl-C "
          f"stops; kernels compiling ahead in process {compiler.pid}", flush=True)
    try:
        if args.once:
            while not stop.is_set():
                feeding = replaying and threads[0].is_alive()
                if not service.step() and not feeding:
                    break
                if feeding:
                    time.sleep(config.poll_s)
        else:
            service.run(stop)
    finally:
        stop.set()
        if compiler.poll() is None:
            compiler.terminate()
        compiler.wait()
        for event in service.events():
            latest = service.latest(event.event_id)
            print(f"{event.event_id}: latest {latest.name if latest else 'none'}")
        service.close()
    return 0
