"""Command-line interface: a thin layer over the Python API.

    tsunami run REGION.toml SCENARIO.toml --out DIR [--outbox DIR] [--event ID]
    tsunami export RUN_DIR --outbox DIR [--event ID] [--forecast N]
    tsunami sweep SWEEP.toml --out DIR [--workers N | --scheduler ADDRESS] [--bench]
    tsunami validate [CASE ...] [--all] [--out DIR]
    tsunami bench [--size N] [--dtype float32|float64] [--threads N] [--demo] [--contention]
                  [--accuracy [--spacings 20,10,5,2.5]]
                  [--realtime] [--fan-out] [--damage]
    tsunami feeds {replay,watch,serve,qc,alert,bench} ...   (real-time feeds; README)
    tsunami database {build,info} ...   (unit-source databases; README)
    tsunami invert DB RECORD.csv ... --at SECONDS --out DIR   (source estimate; README)

Every failure ends with one line on stderr and an exit status from
:data:`tsunami.errors.EXIT_CODES` (README, "Operating it"); ``tsunami --debug ...``
prints the full traceback as well.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

from tsunami.config import Range
from tsunami.demo import DEMO_REGION, DEMO_SCENARIO
from tsunami.errors import (
    EXIT_ENVIRONMENT,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    BlowUpError,
    EnvironmentFault,
    InputError,
    environment_fault,
    is_netcdf_error,
)
from tsunami.model import SCHEMES
from tsunami.realtime.commands import add_feeds_parser, add_source_parsers, add_watch_parser
from tsunami.warmup import DTYPES

#: Plausible ranges of numeric command-line options (README, "Plausible ranges").
CLI_RANGES = {
    "--resolution": Range(0.1, 10_000.0, "m", why="cell size of the published layers"),
    "--forecast": Range(1, 999_999, why="forecast number"),
}
#: Below this much free space in an output folder's file system a run warns first.
LOW_DISK_BYTES = 200 * 2**20
COMMAND_LINE = "command line"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tsunami", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true",
                        help="print the full traceback of any failure on stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("run", help="run a scenario on a region and write the fields")
    p.add_argument("region", type=Path, help="region file (TOML)")
    p.add_argument("scenario", type=Path, help="scenario file (TOML)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--fan-out", action="store_true", help="experimental: run each town's "
                   "nested grids as its own Dask task, driven one-way by the region's "
                   "recorded boundary forcing (no gauges)")
    p.add_argument("--workers", type=int, help="with --fan-out: LocalCluster worker "
                   "processes (default: one per core)")
    p.add_argument("--scheduler", help="with --fan-out: address of a running Dask scheduler "
                   "instead of a LocalCluster")
    _publication_options(p, "default: OUT/outbox")
    p.set_defaults(handler=_run)

    p = commands.add_parser("export", help="publish the products of a finished run")
    p.add_argument("run_dir", type=Path, help="a `tsunami run` output folder")
    _publication_options(p, "required", required=True)
    p.set_defaults(handler=_export)

    p = commands.add_parser("sweep", help="run a scenario set on dask.distributed and "
                            "publish probabilistic maps")
    p.add_argument("sweep", type=Path, nargs="?", help="sweep file (TOML)")
    p.add_argument("--out", type=Path, help="output folder (store, log, products)")
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (default: "
                   "one per core)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (e.g. "
                   "tcp://host:8786) instead of a LocalCluster")
    p.add_argument("--numba-threads", type=int, help="Numba threads per scenario (default: "
                   "a LocalCluster's cores shared among its workers; 1 on --scheduler)")
    p.add_argument("--duration", type=float, help="simulated time (s) of every scenario, "
                   "overriding the files (quick looks, benchmarks)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--no-products", action="store_true", help="run only, publish nothing")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--bench", action="store_true", help="scenarios per hour on the "
                   "Okushiri demo region with 1 and 2 workers (SWEEP defaults to "
                   "scenarios/okushiri1993_sweep.toml)")
    p.add_argument("--scenarios", type=int, default=4, help="for --bench: scenarios per "
                   "measurement (default 4)")
    _publication_options(p, "default: OUT/outbox")
    p.set_defaults(handler=_sweep)

    p = commands.add_parser("validate", help="run validation cases and print the table")
    p.add_argument("cases", nargs="*", help="case names (default: the quick cases)")
    p.add_argument("--all", action="store_true", help="include the long cases")
    p.add_argument("--out", type=Path, default=Path("validation_output"),
                   help="folder for comparison plots (default: validation_output)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.set_defaults(handler=_validate)

    p = commands.add_parser("compile", help="compile the Numba kernels into the on-disk cache "
                            "ahead of the first run (about a minute per scheme and precision)")
    p.add_argument("--dtype", choices=DTYPES, action="append",
                   help="precision(s) to compile (default: both)")
    p.add_argument("--scheme", choices=SCHEMES, action="append",
                   help="scheme(s) to compile (default: both)")
    p.add_argument("--no-damage", action="store_true",
                   help="skip the damage Monte Carlo kernel")
    p.set_defaults(handler=_compile)

    p = commands.add_parser("bench", help="measure kernel throughput")
    p.add_argument("--size", type=int, default=None,
                   help="grid size N (N x N cells; default 1000, 346 for --contention)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--samples", type=int, default=5, help="timed blocks (median reported)")
    p.add_argument("--threads", type=int, default=None, help="Numba threads (default: all)")
    p.add_argument("--demo", action="store_true",
                   help="time the shipped demo end to end: per stage and per grid")
    p.add_argument("--damage", action="store_true",
                   help="time damage assessment and export of 100,000 buildings")
    p.add_argument("--buildings", type=int, default=100_000, help="buildings for --damage")
    p.add_argument("--partition-size", type=int, default=None,
                   help="for --damage: buildings per Dask partition (default 250,000)")
    p.add_argument("--contention", action="store_true",
                   help="slowdown of a run beside a second run and beside busy loops "
                        "(--samples repeats)")
    p.add_argument("--load", type=int, default=4, help="busy loops for --contention")
    p.add_argument("--accuracy", action="store_true",
                   help="time to accuracy on the synthetic coast: leapfrog and fv2 at "
                        "--spacings, wall time against area and runup error")
    p.add_argument("--spacings", default="20,10,5,2.5",
                   help="for --accuracy: grid spacings in m, comma-separated (the finest "
                        "fv2 run is the reference)")
    p.add_argument("--realtime", action="store_true",
                   help="the watch service end to end on the Okushiri demo in real time: "
                        "alert at origin + 3 min, virtual offshore network")
    p.add_argument("--forecasts", type=int, default=2, help="for --realtime: stop after N")
    p.add_argument("--out", type=Path, default=None,
                   help="for --realtime: working folder (keeps the database between runs)")
    p.add_argument("--fan-out", action="store_true",
                   help="town fan-out scaling with 1 and 2 Dask workers (region default: "
                        "grids/okushiri1993/coast_towns.toml, 14 towns at 10 m)")
    p.add_argument("--workers", default="1,2",
                   help="for --fan-out: worker counts, comma-separated (default 1,2)")
    p.add_argument("--duration", type=float, default=None,
                   help="simulated seconds: for --fan-out (default 600), for --realtime "
                        "(default the demo's 3600; forecast 1 at most 2400)")
    p.add_argument("--region", type=Path, default=None,
                   help="region for --demo (default: the demo's) or --fan-out")
    p.add_argument("--scenario", type=Path, default=DEMO_SCENARIO,
                   help="scenario for --demo or --fan-out")
    p.set_defaults(handler=_bench)

    add_feeds_parser(commands)
    add_source_parsers(commands)
    add_watch_parser(commands)

    args = parser.parse_args(argv)
    with _warnings_on_stderr(), _terminate_as_interrupt():
        try:
            _check_arguments(args)
            return args.handler(args)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:  # output piped into `head` and the like
            sys.stderr.close()
            return 0
        except Exception as exc:  # every failure gets one line and an exit status
            return _report(exc, args.debug)


def _report(exc: Exception, debug: bool) -> int:
    """Print one line for a failure (the traceback too with --debug); its exit status."""
    if debug:
        traceback.print_exc(file=sys.stderr)
    if isinstance(exc, InputError | BlowUpError | FileExistsError | FileNotFoundError):
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    if isinstance(exc, OSError) or is_netcdf_error(exc):
        print(f"error: {environment_fault(exc)}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    if isinstance(exc, MemoryError):
        print("error: out of memory: close other work, use coarser or fewer grids, or a "
              "larger machine", file=sys.stderr)
        return EXIT_ENVIRONMENT
    saved = "" if debug else f"; the traceback is in {_save_traceback(exc)}"
    if isinstance(exc, ValueError):  # a bad value the input checks did not catch first
        print(f"error: invalid input: {exc}{saved}", file=sys.stderr)
        return EXIT_INPUT
    print(f"internal error: {type(exc).__name__}: {exc}. This is a bug: please report it "
          f"with the traceback{saved}", file=sys.stderr)
    return EXIT_INTERNAL


def _save_traceback(exc: Exception) -> str:
    """Write the traceback to ``$TSUNAMI_LOG_DIR`` (default: the temporary folder)."""
    folder = Path(os.environ.get("TSUNAMI_LOG_DIR") or tempfile.gettempdir())
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = folder / f"tsunami-error-{stamp}-{os.getpid()}.txt"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(exc)))
    except OSError:
        return "(nowhere: it could not be saved; run again with --debug)"
    return str(path)


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (a batch scheduler's or systemd's stop, ``kill``) interrupts like Ctrl-C, so
    that a sweep or database build records where it stopped and cancels its tasks instead
    of dying mid-write; commands with their own handler (``tsunami watch``) replace it."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _warnings_on_stderr():
    """Show each warning as one line ``warning: ...`` on stderr (the usual filters
    decide which are shown: input warnings are, library deprecations are not)."""
    def show(message, category, filename, lineno, file=None, line=None):
        kind = "" if issubclass(category, UserWarning) else f"{category.__name__}: "
        print(f"warning: {kind}{message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _check_arguments(args) -> None:
    """Options checked before anything is read or run: names, numbers, CRS."""
    from tsunami.names import check_name

    if getattr(args, "event", None) is not None:
        check_name(args.event, COMMAND_LINE, "--event")
    for option in ("resolution", "forecast"):
        value = getattr(args, option, None)
        if value is not None and (problem := CLI_RANGES[f"--{option}"].problem(value)):
            raise InputError(COMMAND_LINE, f"--{option}", problem)
    if getattr(args, "crs", None):
        from tsunami.dem import parse_crs
        from tsunami.region import check_output_crs

        crs = parse_crs(args.crs, COMMAND_LINE, "--crs")
        if crs is None:
            raise InputError(COMMAND_LINE, "--crs", "published layers need a projected CRS, "
                             "not a local frame")
        check_output_crs(crs, COMMAND_LINE, "--crs")


def check_output_folder(path: Path, option: str) -> None:
    """``path`` can be created (or is a folder) and written: checked before a run, so
    that an hour of simulation is not lost to a typo or a read-only share. Warns when
    its disk has less than :data:`LOW_DISK_BYTES` free."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(COMMAND_LINE, option, f"{path} is a file, not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(COMMAND_LINE, option, f"cannot create {path}: {existing} is a file")
    try:  # a real write: os.access is wrong for root, read-only mounts and some shares
        fd, probe = tempfile.mkstemp(prefix=".tsunami-write-test-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        fault = environment_fault(exc)
        raise EnvironmentFault(path, f"write to {option}", fault.detail, fault.hint,
                               exc.errno) from None
    free = shutil.disk_usage(existing).free
    if free < LOW_DISK_BYTES:
        warnings.warn(f"{option} {path}: only {free / 2**20:.0f} MB free on its disk",
                      stacklevel=2)


def _publication_options(p, outbox_help: str, required: bool = False) -> None:
    p.add_argument("--outbox", type=Path, required=required,
                   help=f"folder receiving published forecasts ({outbox_help})")
    p.add_argument("--event", help="event id (default: the scenario name)")
    p.add_argument("--forecast", type=int, help="forecast number (default: the next one)")
    p.add_argument("--crs", help="CRS of the layers (default: the region's output_crs, "
                   "else the JGD2011 zone of each town)")
    p.add_argument("--resolution", type=float, help="cell size of the layers in metres")


def _output_crs(args, region_crs):
    """--crs if given, else the region's output CRS (None: the zone of each town)."""
    from tsunami.dem import parse_crs

    if args.crs:
        return parse_crs(args.crs, None, "--crs")
    return region_crs


def _run(args) -> int:
    from tsunami.names import check_name
    from tsunami.region import Region
    from tsunami.runner import run, write_outputs
    from tsunami.scenario import Scenario

    region = Region.load(args.region)
    scenario = Scenario.load(args.scenario)
    publish = bool(region.towns) and region.crs is not None
    outbox = args.outbox or args.out / "outbox"
    # Everything a run needs afterwards is checked before it starts.
    event_id = args.event
    if publish and event_id is None:  # the scenario's name becomes a folder name
        event_id = check_name(scenario.name, scenario.path, "scenario.name")
    check_output_folder(args.out, "--out")
    if publish:
        check_output_folder(outbox, "--outbox")
    start = time.perf_counter()
    if args.fan_out:
        from tsunami.cluster import dask_client
        from tsunami.fanout import run_fanout

        with dask_client(args.workers, args.scheduler) as client:
            print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr)
            result, report = run_fanout(region, scenario, client)
        print(report.summary())
    else:
        from tsunami.warmup import compile_missing, run_passes

        compile_missing(run_passes(region, scenario),
                        log=lambda line: print(line, file=sys.stderr, flush=True))
        result = run(region, scenario, progress=not args.no_progress)
    written = write_outputs(result, args.out)
    print(f"{scenario.name} on {region.name}: {scenario.duration:.0f} s simulated in "
          f"{time.perf_counter() - start:.1f} s wall")
    for name, figures in result.summary().items():
        print(f"  grid {name}: max inundation depth {figures['max_inundation_depth_m']:.2f} m, "
              f"runup {figures['runup_m']:.2f} m, {figures['inundated_cells']} cells flooded")
    for name, figures in result.town_summary().items():
        print(f"  town {name}: max inundation depth {figures['max_inundation_depth_m']:.2f} m, "
              f"runup {figures['runup_m']:.2f} m, flooded area "
              f"{figures['flooded_area_km2']:.2f} km2, first arrival "
              f"{figures['first_arrival_min']:.1f} min")
    print(f"outputs in {args.out.resolve()}:")
    for path in written:
        print(f"  {path.name}")
    if not result.towns:
        print("no [[town]] in the region: no products to publish")
        return 0
    if region.crs is None:
        print("the region is a local frame: GIS products need a georeferenced region")
        return 0
    from tsunami.pipeline import publish_forecast

    folder = publish_forecast(
        region, result.towns, outbox, event_id=event_id, scenario=scenario.name,
        origin_time=scenario.origin_time, source_type=scenario.source_type,
        timings_s=result.timings, forecast_number=args.forecast,
        crs=_output_crs(args, None), resolution=args.resolution,
        copies=[p for p in written if p.suffix in (".nc", ".csv") and
                (p.name.startswith("town_") or p.name.startswith("gauges"))],
        input_warnings=result.input_warnings)
    _print_publication(folder)
    return 0


def _print_publication(folder: Path) -> None:
    import json

    for path in sorted(folder.glob("*_damage_summary.json")):
        summary = json.loads(path.read_text())
        town, figures = summary["town"], summary["town_summary"]
        severe = figures["buildings"]["at_least"]["DS4+"]
        washed = figures["buildings"]["by_state"]["DS6 washed away"]
        people = figures.get("people", {})
        line = (f"  damage {town} (planning estimate): {severe['expected']:.0f} of "
                f"{figures['buildings']['total']} buildings complete damage or worse "
                f"({severe['p05']:.0f}-{severe['p95']:.0f}), {washed['expected']:.0f} washed "
                f"away ({washed['p05']:.0f}-{washed['p95']:.0f})")
        if people.get("casualties"):
            c = people["casualties"]
            line += (f"; {people['inundated']:.0f} people inundated, casualties "
                     f"{c['expected']:.0f} ({c['low']:.0f}-{c['high']:.0f}, {c['model']})")
        print(line)
    print(f"products published in {folder.resolve()} "
          f"(latest: {(folder.parent / 'latest').resolve().name}):")
    for path in sorted(folder.iterdir()):
        print(f"  {path.name}")


def _export(args) -> int:
    from datetime import datetime

    from tsunami.pipeline import publish_forecast
    from tsunami.products import read_run
    from tsunami.region import Region

    towns, summary = read_run(args.run_dir)  # only the files run.json lists, checked
    if not towns:
        print(f"error: {args.run_dir / 'run.json'} lists no town_*.nc fields to publish",
              file=sys.stderr)
        return 2
    check_output_folder(args.outbox, "--outbox")
    # run.json has the region's path (older runs: the fields' attributes)
    region_file = summary.get("region_file") or next(iter(towns.values())).attrs.get(
        "region_file")
    if not region_file or not Path(region_file).exists():
        print(f"error: the region file of this run ({region_file}) is not here; it gives the "
              "output CRS and the exposure", file=sys.stderr)
        return 2
    origin = summary.get("origin_time")
    folder = publish_forecast(
        Region.load(region_file), towns, args.outbox, event_id=args.event or summary["scenario"],
        scenario=summary["scenario"],
        origin_time=datetime.fromisoformat(origin.replace("Z", "+00:00")) if origin else None,
        source_type=summary.get("source_type", "unknown"),
        timings_s=summary.get("timings_s", {}), forecast_number=args.forecast,
        crs=_output_crs(args, None), resolution=args.resolution,
        copies=[args.run_dir / f["name"] for f in summary["files"]
                if f["name"].startswith(("town_", "gauges"))],
        input_warnings=summary.get("input_warnings", []))
    _print_publication(folder)
    return 0


def _sweep(args) -> int:
    from tsunami.sweep import cli as sweep_cli

    return sweep_cli.main(args, _output_crs(args, None))


def _compile(args) -> int:
    from tsunami.warmup import compile_side_by_side

    def log(line: str) -> None:
        print(f"compiled {line}", file=sys.stderr, flush=True)

    passes = [(d, s) for d in args.dtype or DTYPES for s in args.scheme or SCHEMES]
    if passes[1::2]:
        print("compiling " + ", ".join(f"{s} {d}" for d, s in passes[1::2])
              + " in a second process", file=sys.stderr, flush=True)
    seconds = compile_side_by_side(passes, damage=not args.no_damage, log=log)
    if passes[1::2]:
        log(", ".join(f"{s} {d}" for d, s in passes[1::2]) + " (second process)")
    print(f"kernels compiled or loaded from the cache in {seconds['all']:.1f} s")
    return 0


def _validate(args) -> int:
    from tsunami.validation import format_table, registry

    cases = registry()
    if args.list:
        for case in cases.values():
            print(f"{case.name:<18} {'quick' if case.quick else 'long ':<6} {case.description}")
        return 0
    unknown = [c for c in args.cases if c not in cases]
    if unknown:
        print(f"error: unknown case(s) {unknown}; known: {sorted(cases)}", file=sys.stderr)
        return 2
    chosen = args.cases or [c.name for c in cases.values() if c.quick or args.all]
    metrics, figures, failed = [], [], []
    for name in chosen:
        print(f"running {name}: {cases[name].description} ...", file=sys.stderr, flush=True)
        result = cases[name].run(args.out)
        print(f"  {name} took {result.wall_time:.1f} s", file=sys.stderr)
        metrics += result.metrics
        figures += result.figures
        if not result.passed:
            failed.append(name)
    print(format_table(metrics))
    judged = [m for m in metrics if m.passed is not None]
    print(f"\n{sum(m.passed for m in judged)}/{len(judged)} judged metrics pass"
          + (f"; failing cases: {', '.join(failed)}" if failed else "; every case passes"))
    if figures:
        print(f"comparison plots in {args.out.resolve()}:")
        for path in figures:
            print(f"  {path.name}")
    return 1 if failed else 0


def _check_duration(seconds: float, minimum: float = 0.0) -> None:
    if not (minimum <= seconds < float("inf") and seconds > 0.0):
        raise InputError(COMMAND_LINE, "--duration", "simulated seconds must be finite "
                         f"and at least {minimum:g} (and positive); got {seconds!r}")


def _bench(args) -> int:
    import numba

    from tsunami import bench

    if args.threads:
        numba.set_num_threads(args.threads)
    if args.damage:
        from tsunami.damage import bench as damage_bench

        print(damage_bench.run(n_buildings=args.buildings, partition_size=args.partition_size))
    elif args.demo:
        print(bench.demo(args.region or DEMO_REGION, args.scenario).report())
    elif args.fan_out:
        from tsunami.fanout.bench import COAST_TOWNS, fanout_scaling

        try:
            workers = tuple(int(w) for w in str(args.workers).split(","))
        except ValueError:
            workers = ()
        if not workers or min(workers) < 1:
            raise InputError(COMMAND_LINE, "--workers", "worker counts are whole numbers "
                             f">= 1, comma-separated; got {args.workers!r}")
        duration = 600.0 if args.duration is None else args.duration
        _check_duration(duration)
        print(fanout_scaling(args.region or COAST_TOWNS, args.scenario, workers,
                             duration,
                             progress=lambda line: print(line, file=sys.stderr)).report())
    elif args.realtime:
        from tsunami.realtime.bench import realtime

        if args.duration is not None:
            _check_duration(args.duration, minimum=60.0)
        print(realtime(args.out, args.forecasts, args.duration,
                       progress=lambda line: print(line, file=sys.stderr)).report())
    elif args.accuracy:
        try:
            spacings = tuple(float(v) for v in str(args.spacings).split(","))
        except ValueError:
            spacings = ()
        if len(spacings) < 2 or not all(0 < v < float("inf") for v in spacings):
            raise InputError(COMMAND_LINE, "--spacings", "two or more positive spacings in "
                             f"m, comma-separated; got {args.spacings!r}")
        print(bench.accuracy(spacings,
                             progress=lambda line: print(line, file=sys.stderr)).report())
    elif args.contention:
        print(bench.contention(args.size or bench.CONTENTION_SIZE, repeats=args.samples,
                               load=args.load,
                               progress=lambda line: print(line, file=sys.stderr)).report())
    else:
        print(bench.kernel(args.size or 1000, args.dtype, args.samples).report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
