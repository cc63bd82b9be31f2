"""``tsunami sweep``: the command behind the sweep API (argument parsing is in
:mod:`tsunami.cli`)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from tsunami.cluster import dask_client
from tsunami.errors import InputError
from tsunami.region import Region
from tsunami.sweep.config import Sweep
from tsunami.sweep.products import publish_sweep
from tsunami.sweep.run import run_sweep
from tsunami.sweep.store import SweepStore

ROOT = Path(__file__).resolve().parents[2]
BENCH_SWEEP = ROOT / "scenarios" / "okushiri1993_sweep.toml"


def main(args, crs) -> int:
    if args.bench:
        from tsunami.sweep import bench

        result = bench.run(args.sweep or BENCH_SWEEP, scenarios=args.scenarios,
                           duration=args.duration or bench.DURATION,
                           threads=args.numba_threads)
        print(result.report())
        return 0
    if args.sweep is None:
        raise InputError(None, "sweep", "give a sweep file (or --bench)")
    sweep = Sweep.load(args.sweep, duration=args.duration)
    if args.list:
        print(scenario_table(sweep))
        return 0
    if args.out is None:
        raise InputError(None, "--out", "give the output folder")
    region = Region.load(sweep.region_path)
    print(f"sweep {sweep.name}: {len(sweep.scenarios)} scenarios on region {region.name} "
          f"({', '.join(t.name for t in region.towns) or 'no towns'})", file=sys.stderr)
    with dask_client(args.workers, args.scheduler, threads=args.numba_threads) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        print(f"Dask: {len(workers)} workers, "
              f"{sum(w['nthreads'] for w in workers.values())} threads "
              f"({'scheduler ' + args.scheduler if args.scheduler else 'LocalCluster'})",
              file=sys.stderr)
        report = run_sweep(sweep, args.out, client, region=region,
                           progress=not args.no_progress, threads=args.numba_threads)
    print(report.summary())
    if not args.no_products:
        with SweepStore.open(args.out / "sweep.zarr", region, sweep.name) as store:
            if not store.done():
                print("no scenario finished: nothing to publish")
                return 1
            folder = publish_sweep(store, region, args.outbox or args.out / "outbox",
                                   event_id=args.event, crs=crs,
                                   resolution=args.resolution,
                                   forecast_number=args.forecast)
        print(f"probabilistic maps published in {folder.resolve()}:")
        for path in sorted(folder.iterdir()):
            print(f"  {path.name}")
    return 1 if report.failed else 0


def scenario_table(sweep: Sweep) -> str:
    """The scenarios of a sweep, one per line: id, weight, name and main parameters."""
    lines = [f"{sweep.name}: {len(sweep.scenarios)} scenarios on {sweep.region_path}",
             f"{'id':<16}  {'weight':>7}  {'Mw':>5}  {'lon':>9}  {'lat':>8}  {'depth km':>8}  "
             f"{'slip m':>6}  name"]
    for s in sweep.scenarios:
        p = s.parameters

        def value(key: str, fmt: str, scale: float = 1.0, p=p) -> str:
            v = p.get(key, math.nan)
            return format(v / scale, fmt) if math.isfinite(v) else "-"

        lines.append(f"{s.id:<16}  {s.weight:>7.3g}  {value('magnitude', '5.2f'):>5}  "
                     f"{value('longitude', '9.4f'):>9}  {value('latitude', '8.4f'):>8}  "
                     f"{value('depth_m', '8.1f', 1e3):>8}  {value('max_slip_m', '6.2f'):>6}  "
                     f"{s.name}")
    return "\n".join(lines)
