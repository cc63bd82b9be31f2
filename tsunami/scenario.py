"""Scenario files: what happens (the tsunami source), for how long, and what to write.

A scenario is a TOML file (format documented in README.md, "Scenario files"). Besides a
displacement raster and an incident wave, ``[source]`` can be an earthquake fault
(:mod:`tsunami.source`; lengths in m, angles in degrees, times in s):

- ``type = "subfaults"``: ``path`` to a subfault table (CSV, columns in
  :mod:`tsunami.source.table`); optional ``reference`` ("top_centre", the default,
  "centroid" or "top_start": the point of each rectangle its longitude, latitude and
  depth locate) and ``hypocentre = [longitude, latitude, depth_m]``.
- ``type = "fault"``: one rectangle inline: ``longitude``, ``latitude``, ``depth_m``,
  ``strike``, ``dip``, ``rake``, ``slip_m``, ``length_m``, ``width_m``; optional
  ``reference`` and ``hypocentre`` (default: the centroid).
- ``type = "alert"``: ``magnitude`` (Mw), hypocentre ``longitude``, ``latitude``,
  ``depth_m``, mechanism ``strike``, ``dip``, ``rake``; optional ``law`` (a name in
  :data:`tsunami.source.scaling.LAWS`; default by mechanism) and ``rigidity`` (Pa).

Every fault source also takes ``tanioka_satake`` and ``kajiura`` (true/false, default
true: the sea-surface corrections) and, for a kinematic rupture, ``rupture_velocity``
(m/s: onsets from the distance to the hypocentre; single rectangles are then cut into
patches of at most 20 km) and/or ``rise_time`` (s: every subfault's slip grows linearly
over it). Without them the rupture is instantaneous, unless a table gives its own
``rupture_time_s``/``rise_time_s``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tsunami.boundaries import SIDES, IncidentWave
from tsunami.config import Range, Table, load_toml, read_text
from tsunami.dem import Raster, check_values, parse_crs, read_raster
from tsunami.errors import InputError
from tsunami.source.kinematic import is_kinematic, patches, with_timing
from tsunami.source.okada import REFERENCES, FaultModel, Subfault
from tsunami.source.scaling import LAWS, fault_from_alert
from tsunami.source.table import FAULT_RANGES, read_subfault_csv

#: Plausible ranges of the scenario's numbers (README, "Plausible ranges"), by key.
SCENARIO_RANGES = {
    "duration": Range(0.0, 259_200.0, "s", open_low=True,
                      why="up to 72 h: an ocean crossing takes about 24 h"),
    "still_water_level": Range(-20.0, 20.0, "m",
                               why="tide level above the DEM datum; the largest tidal "
                                   "ranges on Earth are about 16 m"),
    "cfl": Range(0.05, 1.0, why="above 1 the explicit scheme is unstable; below 0.05 a run "
                                "takes 14 times the default's steps for nothing"),
    "dry_depth": Range(1e-5, 1.0, "m", why="from laboratory (0.1 mm) to coarse field grids"),
    "max_speed": Range(0.1, 100.0, "m/s", why="cap on shoreline flows: laboratory to the "
                                              "fastest observed tsunami flows (tens of m/s)"),
    "arrival_threshold": Range(0.0, 10.0, "m", open_low=True),
    "gauge_interval": Range(0.0, 3600.0, "s", why="0: every step"),
    "displacement": Range(-100.0, 100.0, "m", why="raster values; the largest coseismic "
                                                  "uplifts are about 10-15 m"),
    "eta_m": Range(-50.0, 50.0, "m", why="incident-wave CSV; also refused: an amplitude "
                                         "above 0.78 of the boundary depth (it would break)"),
}


@dataclass(frozen=True)
class DisplacementSource:
    """An initial sea-surface displacement raster (m), in any CRS."""

    path: Path
    crs_text: str | None
    variable: str | None
    field: str

    def read(self, config: Path, local: bool) -> Raster:
        """The raster, for a region in a local frame (``local``) or georeferenced. Its
        values must lie within ``SCENARIO_RANGES["displacement"]``; NaN is no data."""
        crs = parse_crs(self.crs_text, config, f"{self.field}.crs") if self.crs_text else None
        if self.crs_text is not None and crs is None and not local:
            raise InputError(config, f"{self.field}.crs", "a raster in a local frame cannot "
                             "be placed in a georeferenced region: give the raster's CRS")
        if crs is not None and local:
            raise InputError(config, f"{self.field}.crs", f"a raster in {crs.name} cannot be "
                             "placed in a region in a local frame; set crs = \"local\" to read "
                             "its coordinates as metres of that frame")
        raster = read_raster(self.path, crs=crs, variable=self.variable,
                             field=f"{self.field}.path", config=config,
                             local=local and crs is None)
        check_values(raster, SCENARIO_RANGES["displacement"], config, f"{self.field}.path")
        return raster


@dataclass(frozen=True)
class IncidentWaveSource:
    """A wave of given surface elevation forced through one side of the outermost grid."""

    path: Path
    side: str
    wave: IncidentWave


@dataclass(frozen=True)
class FaultSource:
    """An earthquake fault: the sea surface follows its sea-floor displacement (Okada).

    ``kind`` is the scenario's source type ("subfaults", "fault" or "alert"); ``fault``
    holds the rupture's subfaults (with their onset and rise times, s) and metadata;
    ``tanioka_satake`` and ``kajiura`` switch the sea-surface corrections on.
    """

    kind: str
    fault: FaultModel
    tanioka_satake: bool = True
    kajiura: bool = True
    path: Path | None = None

    @property
    def subfaults(self) -> tuple[Subfault, ...]:
        return self.fault.subfaults

    @property
    def kinematic(self) -> bool:
        """True when the rupture takes time (some subfault starts late or rises slowly)."""
        return is_kinematic(self.fault.subfaults)


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
    source: DisplacementSource | IncidentWaveSource | FaultSource
    origin_time: datetime | None = None
    still_water_level: float = 0.0
    description: str = ""
    numerics: Numerics = field(default_factory=Numerics)
    output: OutputOptions = field(default_factory=OutputOptions)

    @property
    def source_type(self) -> str:
        """The ``[source] type`` of the file (displacement, incident_wave, fault, ...)."""
        if isinstance(self.source, FaultSource):
            return self.source.kind
        if isinstance(self.source, DisplacementSource):
            return "displacement"
        return "incident_wave"

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        path = Path(path).resolve()
        root = Table(load_toml(path, "scenario"), path, "")
        root.check_keys({"scenario", "source", "numerics", "output"}, {"scenario", "source"})
        meta = root.table("scenario", required=True)
        meta.check_keys({"name", "duration", "origin_time", "still_water_level",
                         "description"}, {"name", "duration"})
        name = meta.str("name")
        duration = meta.number("duration", within=SCENARIO_RANGES["duration"])
        still_water_level = meta.number("still_water_level", 0.0,
                                        within=SCENARIO_RANGES["still_water_level"])
        description = meta.str("description", "")
        origin = None
        if meta.has("origin_time"):
            origin = _parse_time(meta, "origin_time")
        source = _source(root.table("source", required=True))
        numerics = parse_numerics(root.table("numerics")) if root.has("numerics") \
            else Numerics()
        output = OutputOptions()
        if root.has("output"):
            t = root.table("output")
            t.check_keys({"arrival_threshold", "gauge_interval"})
            output = OutputOptions(
                arrival_threshold=t.number("arrival_threshold", 0.2,
                                           within=SCENARIO_RANGES["arrival_threshold"]),
                gauge_interval=t.number("gauge_interval", 10.0,
                                        within=SCENARIO_RANGES["gauge_interval"]))
        return cls(name=name, path=path, duration=duration, source=source, origin_time=origin,
                   still_water_level=still_water_level, description=description,
                   numerics=numerics, output=output)


def parse_numerics(t: Table) -> Numerics:
    """A ``[numerics]`` table (also read by sweep files)."""
    t.check_keys({"dtype", "cfl", "dry_depth", "max_speed"})
    return Numerics(
        dtype=t.str("dtype", "float32", choices={"float32", "float64"}),
        cfl=t.number("cfl", 0.7, within=SCENARIO_RANGES["cfl"]),
        dry_depth=t.number("dry_depth", 1e-3, within=SCENARIO_RANGES["dry_depth"]),
        max_speed=t.number("max_speed", 20.0, within=SCENARIO_RANGES["max_speed"]))


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


SOURCE_TYPES = {"displacement", "incident_wave", "subfaults", "fault", "alert"}
# Keys every fault source (subfaults, fault, alert) accepts.
_FAULT_COMMON = {"type", "tanioka_satake", "kajiura", "rupture_velocity", "rise_time"}
# The rectangle of type = "fault", in Subfault's parameter order.
_FAULT_KEYS = ("longitude", "latitude", "depth_m", "strike", "dip", "rake", "slip_m",
               "length_m", "width_m")
_ALERT_KEYS = ("magnitude", "longitude", "latitude", "depth_m", "strike", "dip", "rake")


def _source(t: Table) -> DisplacementSource | IncidentWaveSource | FaultSource:
    kind = t.str("type", choices=SOURCE_TYPES)
    if kind is None:
        raise t.error("type", f"missing required key (one of {sorted(SOURCE_TYPES)})")
    if kind == "displacement":
        t.check_keys({"type", "path", "crs", "variable"}, {"path"})
        return DisplacementSource(t.path("path"), t.str("crs"), t.str("variable"), t.name)
    if kind in ("subfaults", "fault", "alert"):
        return _fault_source(t, kind)
    t.check_keys({"type", "path", "side"}, {"path", "side"})
    path = t.path("path")
    side = t.str("side", choices=set(SIDES))
    return IncidentWaveSource(path, side, read_wave_csv(path, t.source, t.field("path")))


def _fault_source(t: Table, kind: str) -> FaultSource:
    """A fault source: ``subfaults`` (CSV table), ``fault`` (one rectangle inline) or
    ``alert`` (hypocentre, Mw and mechanism -> a rectangle by a scaling law)."""
    path = None
    hypocentre = None
    if kind == "subfaults":
        t.check_keys(_FAULT_COMMON | {"path", "reference", "hypocentre"}, {"path"})
        path = t.path("path")
        reference = t.str("reference", "top_centre", choices=set(REFERENCES))
        subfaults = read_subfault_csv(path, reference)
        fault = FaultModel(subfaults, {"model": "subfault table", "table": str(path),
                                       "reference_point": reference,
                                       "subfaults": len(subfaults)})
        hypocentre = _hypocentre(t)
    elif kind == "fault":
        t.check_keys(_FAULT_COMMON | set(_FAULT_KEYS) | {"reference", "hypocentre"},
                     set(_FAULT_KEYS))
        values = _fault_values(t)
        reference = t.str("reference", "top_centre", choices=set(REFERENCES))
        try:
            subfault = Subfault.from_reference(reference, *values)
        except ValueError as exc:
            raise t.error("depth_m", str(exc)) from None
        fault = FaultModel((subfault,), {"model": "one rectangle",
                                         "reference_point": reference})
        hypocentre = _hypocentre(t) or subfault.centroid
    else:
        t.check_keys(_FAULT_COMMON | set(_ALERT_KEYS) | {"law", "rigidity"},
                     set(_ALERT_KEYS))
        magnitude = t.number("magnitude", within=FAULT_RANGES["magnitude"])
        lon, lat, depth, strike = _fault_values(t, ("longitude", "latitude", "depth_m",
                                                     "strike"))
        # dip > 0: the fault is placed by sliding it in its plane, which a horizontal
        # plane cannot do.
        dip = t.number("dip", within=FAULT_RANGES["dip"], positive=True)
        rake = t.number("rake", within=FAULT_RANGES["rake"])
        fault = fault_from_alert(lon, lat, depth, magnitude, strike, dip, rake,
                                 law=t.str("law", choices=set(LAWS)),
                                 rigidity=t.number("rigidity", within=FAULT_RANGES["rigidity"]))
        hypocentre = fault.hypocentre
    rupture_velocity = t.number("rupture_velocity", within=FAULT_RANGES["rupture_velocity"])
    rise_time = t.number("rise_time", within=FAULT_RANGES["rise_time_s"])
    subfaults = list(fault.subfaults)
    if rupture_velocity is not None:
        if hypocentre is None:
            raise t.error("hypocentre", "needed with rupture_velocity: [longitude, latitude, "
                          "depth_m] where the rupture starts")
        if kind != "subfaults":  # a single rectangle ruptures patch by patch
            subfaults = [p for s in subfaults for p in patches(s)]
    subfaults = with_timing(subfaults, hypocentre, rupture_velocity, rise_time)
    metadata = dict(fault.metadata)
    if is_kinematic(subfaults):
        end = max(s.rupture_time + s.rise_time for s in subfaults)
        metadata["rupture"] = (f"kinematic: {len(subfaults)} subfaults, slip over "
                               f"0...{end:.1f} s")
        if rupture_velocity is not None:
            metadata["rupture_velocity_m_s"] = rupture_velocity
        if rise_time is not None:
            metadata["rise_time_s"] = rise_time
    else:
        metadata["rupture"] = "instantaneous"
    tanioka_satake = _flag(t, "tanioka_satake", True)
    kajiura = _flag(t, "kajiura", True)
    metadata["tanioka_satake"] = str(tanioka_satake).lower()
    metadata["kajiura"] = str(kajiura).lower()
    return FaultSource(kind, FaultModel(subfaults, metadata, hypocentre), tanioka_satake,
                       kajiura, path)


def _fault_values(t: Table, keys: tuple[str, ...] = _FAULT_KEYS) -> list[float]:
    """Numbers of a rectangle's keys, each checked against its plausible range."""
    return [t.number(key, within=FAULT_RANGES[key]) for key in keys]


def _hypocentre(t: Table) -> tuple[float, float, float] | None:
    values = t.numbers("hypocentre", 3)
    if values is None:
        return None
    for key, value in zip(("longitude", "latitude", "depth_m"), values, strict=True):
        if problem := FAULT_RANGES[key].problem(value):
            raise t.error("hypocentre", f"expected [longitude, latitude, depth_m]; {key} "
                          f"{problem}")
    return values[0], values[1], values[2]


def _flag(t: Table, key: str, default: bool) -> bool:
    value = t.data.get(key, default)
    if not isinstance(value, bool):
        raise t.error(key, f"expected true or false, got {value!r}")
    return value


def read_wave_csv(path: Path, config: Path | None = None, field: str = "path") -> IncidentWave:
    """Read an incident wave ``time_s,eta_m`` CSV (UTF-8, BOM allowed), checking every
    row: finite, increasing times; elevations within ``SCENARIO_RANGES["eta_m"]``."""
    times, etas = [], []
    reader = csv.reader(io.StringIO(read_text(path, "incident-wave CSV", field, config)))
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
        if problem := SCENARIO_RANGES["eta_m"].problem(e):
            raise InputError(path, f"line {number}, column 'eta_m'", problem)
        if times and t <= times[-1]:
            raise InputError(path, f"line {number}", f"time {t:g} s does not increase "
                             f"(previous {times[-1]:g} s)")
        times.append(t)
        etas.append(e)
    if len(times) < 2:
        raise InputError(path, "rows", "need at least two samples")
    return IncidentWave(np.array(times), np.array(etas))
