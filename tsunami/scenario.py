"""Scenario files: what happens (the tsunami source), for how long, and what to write.

A scenario is a TOML file (format documented in README.md, "Scenario files").
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tsunami.boundaries import SIDES, IncidentWave
from tsunami.config import Table, load_toml
from tsunami.dem import Raster, parse_crs, read_raster
from tsunami.errors import InputError


@dataclass(frozen=True)
class DisplacementSource:
    """An initial sea-surface displacement raster (m), in any CRS."""

    path: Path
    crs_text: str | None
    variable: str | None
    field: str

    def read(self, config: Path, local: bool) -> Raster:
        crs = parse_crs(self.crs_text, config, f"{self.field}.crs") if self.crs_text else None
        return read_raster(self.path, crs=crs, variable=self.variable,
                           field=f"{self.field}.path", config=config,
                           local=local and self.crs_text is None)


@dataclass(frozen=True)
class IncidentWaveSource:
    """A wave of given surface elevation forced through one side of the outermost grid."""

    path: Path
    side: str
    wave: IncidentWave


@dataclass(frozen=True)
class Numerics:
    dtype: str = "float32"
    cfl: float = 0.7
    dry_depth: float = 1e-3
    max_speed: float = 20.0


@dataclass(frozen=True)
class OutputOptions:
    arrival_threshold: float = 0.2
    gauge_interval: float = 10.0


@dataclass
class Scenario:
    """A loaded scenario file."""

    name: str
    path: Path
    duration: float
    source: DisplacementSource | IncidentWaveSource
    origin_time: datetime | None = None
    still_water_level: float = 0.0
    description: str = ""
    numerics: Numerics = field(default_factory=Numerics)
    output: OutputOptions = field(default_factory=OutputOptions)

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        path = Path(path).resolve()
        root = Table(load_toml(path, "scenario"), path, "")
        root.check_keys({"scenario", "source", "numerics", "output"}, {"scenario", "source"})
        meta = root.table("scenario", required=True)
        meta.check_keys({"name", "duration", "origin_time", "still_water_level",
                         "description"}, {"name", "duration"})
        name = meta.str("name")
        duration = meta.number("duration", positive=True)
        still_water_level = meta.number("still_water_level", 0.0)
        description = meta.str("description", "")
        origin = None
        if meta.has("origin_time"):
            origin = _parse_time(meta, "origin_time")
        source = _source(root.table("source", required=True))
        numerics = Numerics()
        if root.has("numerics"):
            t = root.table("numerics")
            t.check_keys({"dtype", "cfl", "dry_depth", "max_speed"})
            numerics = Numerics(
                dtype=t.str("dtype", "float32", choices={"float32", "float64"}),
                cfl=t.number("cfl", 0.7, positive=True, maximum=1.0),
                dry_depth=t.number("dry_depth", 1e-3, positive=True, maximum=1.0),
                max_speed=t.number("max_speed", 20.0, positive=True))
        output = OutputOptions()
        if root.has("output"):
            t = root.table("output")
            t.check_keys({"arrival_threshold", "gauge_interval"})
            output = OutputOptions(
                arrival_threshold=t.number("arrival_threshold", 0.2, positive=True),
                gauge_interval=t.number("gauge_interval", 10.0, minimum=0.0))
        return cls(name=name, path=path, duration=duration, source=source, origin_time=origin,
                   still_water_level=still_water_level, description=description,
                   numerics=numerics, output=output)


def _parse_time(t: Table, key: str) -> datetime:
    value = t.data[key]
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise t.error(key, f"not an ISO 8601 time: {value!r}") from None
    else:
        raise t.error(key, f"expected a time such as 1993-07-12T13:17:00Z, got {value!r}")
    if moment.tzinfo is None:
        raise t.error(key, "give the time zone (e.g. a trailing Z for UTC)")
    return moment.astimezone(UTC)


def _source(t: Table) -> DisplacementSource | IncidentWaveSource:
    kind = t.str("type", choices={"displacement", "incident_wave"})
    if kind is None:
        raise t.error("type", "missing required key (displacement or incident_wave)")
    if kind == "displacement":
        t.check_keys({"type", "path", "crs", "variable"}, {"path"})
        return DisplacementSource(t.path("path"), t.str("crs"), t.str("variable"), t.name)
    t.check_keys({"type", "path", "side"}, {"path", "side"})
    path = t.path("path")
    side = t.str("side", choices=set(SIDES))
    return IncidentWaveSource(path, side, read_wave_csv(path, t.source, t.field("path")))


def read_wave_csv(path: Path, config: Path | None = None, field: str = "path") -> IncidentWave:
    """Read an incident wave ``time_s,eta_m`` CSV, checking every row."""
    times, etas = [], []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["time_s", "eta_m"]:
            raise InputError(path, "header", "expected the header 'time_s,eta_m'")
        for number, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            try:
                t, e = float(row[0]), float(row[1])
            except (ValueError, IndexError):
                raise InputError(path, f"line {number}", f"not two numbers: {row!r}") from None
            if not (np.isfinite(t) and np.isfinite(e)):
                raise InputError(path, f"line {number}", "NaN or infinite value")
            if times and t <= times[-1]:
                raise InputError(path, f"line {number}", f"time {t:g} s does not increase "
                                 f"(previous {times[-1]:g} s)")
            times.append(t)
            etas.append(e)
    if len(times) < 2:
        raise InputError(path, "rows", "need at least two samples")
    return IncidentWave(np.array(times), np.array(etas))
