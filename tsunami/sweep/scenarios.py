"""Scenario sets: earthquakes around a base event, stochastic slip, stable scenario ids.

A sweep's scenarios come from three places, which combine freely:

- an explicit list (scenario files, or inline ``[source]`` tables);
- a parameter grid around a base :class:`Earthquake` (an alert: magnitude, hypocentre,
  mechanism), every combination of the values given for magnitude, position along
  strike, depth, strike, dip and rake, each a uniform-slip fault from the scaling laws of
  :func:`tsunami.source.scaling.fault_from_alert`;
- stochastic slip (:mod:`tsunami.sweep.slip`): for every earthquake of the grid (or the
  base earthquake alone) a number of realisations, each drawn from its own seed, which
  derives from the sweep's seed and the earthquake's parameters (so adding values to the
  grid leaves the realisations already drawn unchanged).

Each scenario gets a stable id, a hash of what determines its result (source geometry
and slip, duration, numerics, still-water level), by which a rerun recognises scenarios
already done. These functions are the library behind ``tsunami sweep`` and are meant to
be reused (for example by a real-time ensemble around an alert). Lengths in m, angles in
degrees.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from tsunami.scenario import (
    DisplacementSource,
    FaultSource,
    IncidentWaveSource,
    Numerics,
    OutputOptions,
    Scenario,
)
from tsunami.source.okada import FaultModel, Subfault, plane_point
from tsunami.source.scaling import fault_from_alert
from tsunami.sweep.slip import SlipField, stochastic_fault

#: Parameters a grid can vary, with their (minimum, maximum) and whether the minimum is
#: excluded (a fault is placed by sliding it in a plane that must dip).
GRID_PARAMETERS: dict[str, tuple[float | None, float | None, bool]] = {
    "magnitude": (4.0, 10.0, False),
    "along_strike_m": (None, None, False),
    "depth_m": (0.0, None, False),
    "strike": (-360.0, 360.0, False),
    "dip": (0.0, 90.0, True),
    "rake": (-360.0, 360.0, False),
}
#: The numbers stored with every scenario (coordinates along the ``scenario`` dimension):
#: NaN where a scenario has no such value (e.g. the magnitude of a displacement raster).
COORDINATES = ("magnitude", "longitude", "latitude", "depth_m", "strike", "dip", "rake",
               "along_strike_m", "length_m", "width_m", "mean_slip_m", "max_slip_m",
               "realisation")
COORDINATE_UNITS = {"magnitude": "1", "longitude": "degrees_east",
                    "latitude": "degrees_north", "depth_m": "m", "strike": "degree",
                    "dip": "degree", "rake": "degree", "along_strike_m": "m",
                    "length_m": "m", "width_m": "m", "mean_slip_m": "m",
                    "max_slip_m": "m", "realisation": "1"}


@dataclass(frozen=True)
class Earthquake:
    """An earthquake as an alert gives it: ``magnitude`` (Mw), hypocentre ``longitude``,
    ``latitude`` (deg), ``depth_m``, mechanism ``strike``, ``dip``, ``rake`` (deg), and how
    its fault is built (``law``, ``rigidity``: see :func:`fault_from_alert`) and turned
    into a sea surface (``tanioka_satake``, ``kajiura``)."""

    magnitude: float
    longitude: float
    latitude: float
    depth_m: float
    strike: float
    dip: float
    rake: float
    law: str | None = None
    rigidity: float | None = None
    tanioka_satake: bool = True
    kajiura: bool = True

    def moved(self, along_strike_m: float) -> Earthquake:
        """The same earthquake with its hypocentre moved horizontally along strike (m)."""
        if along_strike_m == 0:
            return self
        lon, lat, _ = plane_point(self.longitude, self.latitude, self.depth_m, self.strike,
                                  self.dip, along_strike_m, 0.0)
        return dataclasses.replace(self, longitude=lon, latitude=lat)

    def fault(self) -> FaultModel:
        """The uniform-slip rectangle of the scaling law (hypocentre at its centroid)."""
        return fault_from_alert(self.longitude, self.latitude, self.depth_m, self.magnitude,
                                self.strike, self.dip, self.rake, law=self.law,
                                rigidity=self.rigidity)


@dataclass(frozen=True)
class ScenarioSettings:
    """What generated scenarios share besides their source: simulated ``duration`` (s),
    ``origin_time``, ``still_water_level`` (m), numerics, output options, and the file
    they come from (``path``, for provenance)."""

    duration: float
    path: Path
    origin_time: datetime | None = None
    still_water_level: float = 0.0
    numerics: Numerics = field(default_factory=Numerics)
    output: OutputOptions = field(default_factory=OutputOptions)

    def scenario(self, name: str, source, description: str = "") -> Scenario:
        return Scenario(name=name, path=self.path, duration=self.duration, source=source,
                        origin_time=self.origin_time,
                        still_water_level=self.still_water_level, description=description,
                        numerics=self.numerics, output=self.output)


@dataclass(frozen=True)
class SweepScenario:
    """One scenario of a set: the :class:`~tsunami.scenario.Scenario` to run, its relative
    ``weight`` (>= 0) and its ``parameters`` (the :data:`COORDINATES` it is stored with).
    ``id`` is :func:`scenario_id` of the scenario."""

    scenario: Scenario
    weight: float = 1.0
    parameters: Mapping[str, float] = field(default_factory=dict)
    id: str = field(init=False)

    def __post_init__(self) -> None:
        if not (self.weight >= 0 and math.isfinite(self.weight)):
            raise ValueError(f"scenario weight must be >= 0, got {self.weight}")
        object.__setattr__(self, "id", scenario_id(self.scenario))
        values = dict.fromkeys(COORDINATES, math.nan) | source_parameters(self.scenario)
        values.update(self.parameters)
        object.__setattr__(self, "parameters", values)

    @property
    def name(self) -> str:
        return self.scenario.name


def parameter_grid(base: Earthquake, values: Mapping[str, Sequence[float]],
                   weights: Mapping[str, Sequence[float]] | None = None
                   ) -> list[tuple[Earthquake, dict[str, float], float]]:
    """Every combination of ``values`` (keys in :data:`GRID_PARAMETERS`) applied to
    ``base``: (earthquake, the combination's values, weight). The weight is the product of
    each value's weight in ``weights`` (default 1); ``along_strike_m`` moves the
    hypocentre along strike, the other keys replace the base's value."""
    unknown = set(values) - set(GRID_PARAMETERS)
    if unknown:
        raise ValueError(f"unknown grid parameters {sorted(unknown)}; expected "
                         f"{sorted(GRID_PARAMETERS)}")
    weights = weights or {}
    axes = [k for k in GRID_PARAMETERS if k in values]
    out = []
    for combination in itertools.product(*(range(len(values[k])) for k in axes)):
        chosen = {k: float(values[k][i]) for k, i in zip(axes, combination, strict=True)}
        weight = math.prod(float(weights[k][i]) if k in weights else 1.0
                           for k, i in zip(axes, combination, strict=True))
        changes = {k: v for k, v in chosen.items() if k != "along_strike_m"}
        earthquake = dataclasses.replace(base, **changes).moved(chosen.get("along_strike_m",
                                                                           0.0))
        out.append((earthquake, chosen, weight))
    return out


def combination_name(chosen: Mapping[str, float], realisation: int | None = None) -> str:
    """A short readable name for a grid combination, e.g. ``Mw7.8_x+30km_r003``."""
    labels = {"magnitude": lambda v: f"Mw{v:g}",
              "along_strike_m": lambda v: f"x{v / 1e3:+g}km",
              "depth_m": lambda v: f"z{v / 1e3:g}km", "strike": lambda v: f"strike{v:g}",
              "dip": lambda v: f"dip{v:g}", "rake": lambda v: f"rake{v:g}"}
    parts = [labels[k](v) for k, v in chosen.items()] or ["base"]
    if realisation is not None:
        parts.append(f"r{realisation:03d}")
    return "_".join(parts)


def earthquake_scenarios(earthquakes: Sequence[tuple[Earthquake, Mapping[str, float], float]],
                         settings: ScenarioSettings, *, realisations: int | None = None,
                         seed: int | None = None, slip: SlipField | None = None
                         ) -> list[SweepScenario]:
    """Scenarios for (earthquake, grid values, weight) triples: one uniform-slip fault
    each, or, with ``realisations``, that many stochastic-slip faults each (every one
    with the earthquake's weight), drawn from :func:`realisation_rng`."""
    if realisations is not None and seed is None:
        raise ValueError("stochastic slip needs a seed")
    out = []
    for earthquake, chosen, weight in earthquakes:
        fault = earthquake.fault()
        base = {"along_strike_m": chosen.get("along_strike_m", 0.0)}
        draws = [None] if realisations is None else range(realisations)
        for r in draws:
            if r is None:
                model, kind, parameters = fault, "alert", base
            else:
                rng = realisation_rng(seed, earthquake, r)
                model = stochastic_fault(fault, rng, slip or SlipField())
                model = dataclasses.replace(model, metadata={
                    **model.metadata, "seed": seed, "realisation": r})
                kind, parameters = "subfaults", {**base, "realisation": r}
            source = FaultSource(kind, model, earthquake.tanioka_satake, earthquake.kajiura)
            name = combination_name(chosen, r)
            out.append(SweepScenario(settings.scenario(name, source), weight,
                                     {**_earthquake_parameters(earthquake), **parameters}))
    return out


def realisation_rng(seed: int, earthquake: Earthquake, realisation: int) -> np.random.Generator:
    """The random generator of one realisation: seeded by the sweep's ``seed``, the
    earthquake (all its parameters) and the realisation number, so the draws do not
    depend on which other earthquakes or realisations the set holds."""
    digest = hashlib.sha256(json.dumps(_canonical(dataclasses.asdict(earthquake)),
                                       sort_keys=True).encode()).digest()
    key = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng(np.random.SeedSequence([int(seed), *key, int(realisation)]))


def _earthquake_parameters(earthquake: Earthquake) -> dict[str, float]:
    return {k: getattr(earthquake, k) for k in ("magnitude", "longitude", "latitude",
                                                 "depth_m", "strike", "dip", "rake")}


def source_parameters(scenario: Scenario) -> dict[str, float]:
    """The :data:`COORDINATES` a scenario's source tells by itself: hypocentre, mechanism
    (when every subfault shares it), fault size and slip from the fault's metadata or
    subfaults, magnitude when the metadata give it."""
    source = scenario.source
    if not isinstance(source, FaultSource):
        return {}
    fault = source.fault
    subfaults = fault.subfaults
    out: dict[str, float] = {}
    if fault.hypocentre is not None:
        out.update(zip(("longitude", "latitude", "depth_m"), fault.hypocentre, strict=True))
    for key in ("strike", "dip", "rake"):
        values = {getattr(s, key) for s in subfaults}
        if len(values) == 1:
            out[key] = values.pop()
    areas = np.array([s.area for s in subfaults])
    slips = np.array([s.slip for s in subfaults])
    out["mean_slip_m"] = float((areas * slips).sum() / areas.sum())
    out["max_slip_m"] = float(slips.max())
    for key in ("magnitude", "length_m", "width_m"):
        if isinstance(fault.metadata.get(key), int | float):
            out[key] = float(fault.metadata[key])
    if len(subfaults) == 1:
        out.setdefault("length_m", subfaults[0].length)
        out.setdefault("width_m", subfaults[0].width)
    return out


# -- scenario ids ----------------------------------------------------------------------------
def scenario_id(scenario: Scenario) -> str:
    """A stable 16-hex-digit id of what determines a scenario's result: the source (its
    subfaults and sea-surface options, the bytes of a displacement raster, the incident
    wave), the simulated duration, still-water level, numerics and arrival threshold.
    Names, descriptions and origin times do not enter. Numbers are hashed to 9
    significant digits, so round-off differences between machines do not change it."""
    payload = {
        "duration": scenario.duration, "still_water_level": scenario.still_water_level,
        "numerics": dataclasses.asdict(scenario.numerics),
        "arrival_threshold": scenario.output.arrival_threshold,
        "source": _source_fingerprint(scenario.source),
    }
    text = json.dumps(_canonical(payload), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _source_fingerprint(source) -> dict:
    if isinstance(source, FaultSource):
        names = [f.name for f in dataclasses.fields(Subfault)]
        return {"type": "fault", "tanioka_satake": source.tanioka_satake,
                "kajiura": source.kajiura,
                "subfaults": [[getattr(s, n) for n in names] for s in source.subfaults]}
    if isinstance(source, DisplacementSource):
        return {"type": "displacement", "sha256": _file_digest(source.path),
                "crs": source.crs_text, "variable": source.variable}
    if isinstance(source, IncidentWaveSource):
        wave = np.concatenate([source.wave.time, source.wave.eta]).astype("<f8")
        return {"type": "incident_wave", "side": source.side,
                "sha256": hashlib.sha256(wave.tobytes()).hexdigest()}
    raise TypeError(f"unknown source {type(source).__name__}")


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _canonical(value):
    """JSON-ready ``value`` with floats as 9-significant-digit text."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | float | np.integer | np.floating):
        return format(float(value), ".9g")
    return str(value)
