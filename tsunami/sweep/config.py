"""Sweep files: a set of scenarios over one region (TOML; format in README.md, "Scenario
sweeps").

::

    [sweep]                      name, region (path), duration (s), description,
                                 origin_time, still_water_level
    [numerics], [output]         as in scenario files (output: arrival_threshold)
    [earthquake]                 the base earthquake of [parameters] and [stochastic]
    [parameters]                 values to combine: magnitude, along_strike_m, depth_m,
                                 strike, dip, rake; [parameters.weights] per value
    [stochastic]                 realisations, seed, hurst, slip_cv,
                                 correlation_lengths_m, subfaults, modes
    [[scenario]]                 path = a scenario file, or name + source = {...} inline;
                                 weight

Every key is checked; errors name the file and the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from tsunami.config import Table, load_toml
from tsunami.errors import InputError
from tsunami.names import check_name
from tsunami.scenario import (
    Numerics,
    OutputOptions,
    Scenario,
    _parse_time,
    _source,
    parse_numerics,
)
from tsunami.source.scaling import LAWS
from tsunami.sweep.scenarios import (
    GRID_PARAMETERS,
    Earthquake,
    ScenarioSettings,
    SweepScenario,
    earthquake_scenarios,
    parameter_grid,
)
from tsunami.sweep.slip import SlipField

_EARTHQUAKE_RANGES = {"magnitude": dict(minimum=4.0, maximum=10.0),
                      "longitude": dict(minimum=-360.0, maximum=360.0),
                      "latitude": dict(minimum=-90.0, maximum=90.0),
                      "depth_m": dict(minimum=0.0),
                      "strike": dict(minimum=-360.0, maximum=360.0),
                      "dip": dict(positive=True, maximum=90.0),
                      "rake": dict(minimum=-360.0, maximum=360.0)}


@dataclass
class Sweep:
    """A loaded sweep file: its ``name``, the ``region_path`` it runs on and its
    ``scenarios`` (:class:`~tsunami.sweep.scenarios.SweepScenario`, ids unique)."""

    name: str
    path: Path
    region_path: Path
    scenarios: list[SweepScenario]
    description: str = ""
    sources: list[str] = field(default_factory=list)  # where each scenario is defined

    @classmethod
    def load(cls, path: str | Path, duration: float | None = None) -> Sweep:
        """Read and check a sweep file; ``duration`` (s) overrides every scenario's."""
        path = Path(path).resolve()
        root = Table(load_toml(path, "sweep"), path, "")
        root.check_keys({"sweep", "numerics", "output", "earthquake", "parameters",
                         "stochastic", "scenario"}, {"sweep"})
        meta = root.table("sweep", required=True)
        meta.check_keys({"name", "region", "description", "duration", "origin_time",
                         "still_water_level"}, {"name", "region"})
        name = check_name(meta.str("name"), path, meta.field("name"))
        region_path = meta.path("region").resolve()
        scenarios: list[SweepScenario] = []
        sources: list[str] = []
        generated = root.has("earthquake") or any(
            t.has("source") for t in root.tables("scenario"))
        settings = _settings(root, meta, path, duration) if generated else None
        for t in root.tables("scenario"):
            scenarios.append(_listed(t, settings, duration))
            sources.append(t.name)
        if root.has("earthquake"):
            earthquakes = _grid(root, _earthquake(root.table("earthquake")))
            stochastic = root.table("stochastic")
            options = _stochastic(stochastic) if stochastic is not None else {}
            where = "stochastic" if stochastic is not None else "parameters"
            try:
                made = earthquake_scenarios(earthquakes, settings, **options)
            except ValueError as exc:  # a combination the scaling laws cannot place
                raise InputError(path, where, str(exc)) from None
            scenarios += made
            sources += [f"{where} ({s.name})" for s in made]
        elif root.has("parameters") or root.has("stochastic"):
            key = "parameters" if root.has("parameters") else "stochastic"
            raise InputError(path, key, "needs an [earthquake] to vary")
        if not scenarios:
            raise InputError(path, None, "no scenarios: give [[scenario]] entries or an "
                             "[earthquake] with [parameters] and/or [stochastic]")
        seen: dict[str, int] = {}
        for k, s in enumerate(scenarios):
            if s.id in seen:
                first = seen[s.id]
                raise InputError(path, sources[k], f"scenario {s.name!r} is the same as "
                                 f"{scenarios[first].name!r} ({sources[first]})")
            seen[s.id] = k
        if sum(s.weight for s in scenarios) <= 0:
            raise InputError(path, None, "the scenario weights sum to zero")
        return cls(name, path, region_path, scenarios, meta.str("description", ""), sources)

    def subset(self, indices) -> Sweep:
        """The same sweep with only the scenarios at ``indices`` (a slice or positions)."""
        picked = list(range(len(self.scenarios)))[indices] if isinstance(indices, slice) \
            else list(indices)
        return dataclasses.replace(self, scenarios=[self.scenarios[k] for k in picked],
                                   sources=[self.sources[k] for k in picked])

    @property
    def weighted(self) -> bool:
        """True when the scenarios do not all weigh the same."""
        return len({s.weight for s in self.scenarios}) > 1


def _settings(root: Table, meta: Table, path: Path, duration: float | None
              ) -> ScenarioSettings:
    """What scenarios defined in the sweep file share (the [sweep] times and levels,
    [numerics], [output])."""
    if duration is None:
        if not meta.has("duration"):
            raise meta.error("duration", "missing required key (simulated time, s, of the "
                             "scenarios the sweep file defines)")
        duration = meta.number("duration", positive=True)
    numerics = parse_numerics(root.table("numerics")) if root.has("numerics") else Numerics()
    output = OutputOptions()
    if root.has("output"):
        t = root.table("output")
        t.check_keys({"arrival_threshold"})
        output = OutputOptions(arrival_threshold=t.number("arrival_threshold", 0.2,
                                                          positive=True))
    origin = _parse_time(meta, "origin_time") if meta.has("origin_time") else None
    return ScenarioSettings(duration, path, origin, meta.number("still_water_level", 0.0),
                            numerics, output)


def _listed(t: Table, settings: ScenarioSettings | None, duration: float | None
            ) -> SweepScenario:
    """A [[scenario]]: a scenario file (``path``) or an inline ``source``."""
    t.check_keys({"path", "name", "source", "weight", "description"})
    weight = t.number("weight", 1.0, minimum=0.0)
    if t.has("path") == t.has("source"):
        raise t.error(None, "give either path (a scenario file) or source (inline)")
    if t.has("path"):
        for key in ("name", "description"):
            if t.has(key):
                raise t.error(key, "a scenario file names and describes itself")
        scenario = Scenario.load(t.path("path"))
        if duration is not None:
            scenario = dataclasses.replace(scenario, duration=duration)
    else:
        if not t.has("name"):
            raise t.error("name", "missing required key (an inline scenario needs a name)")
        source = _source(t.table("source"))
        scenario = settings.scenario(t.str("name"), source, t.str("description", ""))
    try:
        return SweepScenario(scenario, weight)
    except ValueError as exc:
        raise t.error("weight", str(exc)) from None


def _earthquake(t: Table) -> Earthquake:
    t.check_keys(set(_EARTHQUAKE_RANGES) | {"law", "rigidity", "tanioka_satake", "kajiura"},
                 set(_EARTHQUAKE_RANGES))
    values = {k: t.number(k, **r) for k, r in _EARTHQUAKE_RANGES.items()}
    flags = {}
    for key in ("tanioka_satake", "kajiura"):
        value = t.data.get(key, True)
        if not isinstance(value, bool):
            raise t.error(key, f"expected true or false, got {value!r}")
        flags[key] = value
    return Earthquake(**values, law=t.str("law", choices=set(LAWS)),
                      rigidity=t.number("rigidity", positive=True), **flags)


def _grid(root: Table, base: Earthquake) -> list:
    """The earthquakes of [parameters] (the base alone without it)."""
    t = root.table("parameters")
    if t is None:
        return [(base, {}, 1.0)]
    t.check_keys(set(GRID_PARAMETERS) | {"weights"})
    values = {}
    for key, (low, high, open_low) in GRID_PARAMETERS.items():
        if not t.has(key):
            continue
        numbers = t.numbers(key)
        if not numbers:
            raise t.error(key, "expected a non-empty list of values")
        for v in numbers:
            if (low is not None and (v < low or (open_low and v == low))) or \
                    (high is not None and v > high):
                bound = f"{'above' if open_low else 'at least'} {low:g}" \
                    if low is not None else ""
                bound += (" and " if bound and high is not None else "") + \
                    (f"at most {high:g}" if high is not None else "")
                raise t.error(key, f"{v:g} is out of range: values must be {bound}")
            if numbers.count(v) > 1:
                raise t.error(key, f"value {v:g} repeats")
        values[key] = numbers
    if not values:
        raise t.error(None, f"give at least one of {sorted(GRID_PARAMETERS)}")
    weights = {}
    w = t.table("weights")
    if w is not None:
        w.check_keys(set(values))
        for key in w.data:
            numbers = w.numbers(key)
            if numbers is None or len(numbers) != len(values[key]):
                raise w.error(key, f"expected {len(values[key])} weights, one per value of "
                              f"parameters.{key}")
            if min(numbers) < 0 or sum(numbers) <= 0:
                raise w.error(key, "weights must be >= 0 and not all zero")
            weights[key] = numbers
    return parameter_grid(base, values, weights)


def _stochastic(t: Table) -> dict:
    t.check_keys({"realisations", "seed", "hurst", "slip_cv", "correlation_lengths_m",
                  "subfaults", "modes"}, {"realisations", "seed"})
    counts = t.data.get("subfaults")
    if counts is not None and not (isinstance(counts, list) and len(counts) == 2 and all(
            isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in counts)):
        raise t.error("subfaults", f"expected [along strike, down dip] counts >= 1, got "
                      f"{counts!r}")
    lengths = t.numbers("correlation_lengths_m", 2)
    if lengths is not None and min(lengths) <= 0:
        raise t.error("correlation_lengths_m", "expected two positive lengths (m): "
                      "[along strike, down dip]")
    slip = SlipField(hurst=t.number("hurst", 0.71, positive=True, maximum=1.5),
                     slip_cv=t.number("slip_cv", 0.5, positive=True),
                     correlation_lengths=tuple(lengths) if lengths else None,
                     subfaults=tuple(counts) if counts else None,
                     modes=t.integer("modes", minimum=1))
    return {"realisations": t.integer("realisations", minimum=1),
            "seed": t.integer("seed", minimum=0), "slip": slip}
