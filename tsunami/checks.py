"""Checks of the inputs taken together, before a run: never a silent all-clear.

A region and a scenario can each be valid and still not make a forecast: a displacement
raster in the wrong CRS lies beside the grid and is read as zero, a raster with no data
over the uplift peak loses it, a fault is placed far outside the region, an incident
wave's times miss the run, a DEM read with the wrong vertical sign turns the sea into
land. Each of these used to run and publish "no flooding". (Longitudes 0...360 against
-180...180 are not among them: the warp and the Okada code wrap them.) The checks run in
:func:`tsunami.runner.build_model` once the bathymetry and the source are on the grids:

- :func:`check_water`: the outer grid has water (an error otherwise), and does not look
  like land and sea swapped (a warning: heuristic, see the function);
- :func:`check_source`: the source reaches the outer grid's water, with no hole where it
  matters on any grid;
- :func:`check_towns`: every town has land in it (a warning otherwise).

Each warning is an :class:`~tsunami.errors.InputWarning` at once, or, given a
``findings`` list, a :class:`~tsunami.errors.Finding` appended to it: a Dask task
(:mod:`tsunami.fanout`) hands its findings to the client, which warns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.warp import transform_bounds
from scipy import ndimage

from tsunami.dem import Raster, resample
from tsunami.errors import Finding, InputError, input_warning
from tsunami.grid import Grid, bounds_text

#: A source whose largest sea-surface displacement over the outer grid's water is at most
#: this share of its own peak (raster values, a fault's slip, a wave series' amplitude)
#: never reaches the model. A fault's uplift is a sizeable share of its slip near it and
#: decays with distance: 1e-3 of the slip is reached only hundreds of km away.
SOURCE_REACH = 1e-3
#: A no-data hole in a displacement raster over water is read as zero (with a warning)
#: only when the displacement around it is at most this share of the raster's peak (a
#: mask of undisturbed sea); otherwise the source is missing where it matters.
HOLE_RIM = 0.01
#: A solitary wave breaks at H/d of about 0.78 (McCowan 1894): a wave forced through a
#: side must be smaller than that share of the still depth there.
BREAKING_RATIO = 0.78
#: Land and sea look swapped when more than this share of the outer grid, and of the
#: cells along its open sides, is land (module doc of :func:`check_water`).
SWAPPED_LAND_SHARE = 0.5


def check_water(region, scenario, model, findings: list[Finding] | None = None) -> None:
    """The outermost grid must have water; warn when its land and sea look swapped.

    ``model`` is the outer grid's :class:`~tsunami.model.ShallowWaterModel`. No wet cell
    is an error: a tsunami has nothing to cross. The swap heuristic: an outer grid is
    laid out around the sea a tsunami crosses, and its open (radiating) sides are placed
    in water so waves can leave. A DEM read with the wrong ``vertical`` sign turns that
    sea into land, so both the grid and its open sides become mostly land. More than
    half land on both counts (or, with no open side, more than half land over all) is
    reported; a coastal grid with its open sides at sea, the normal layout, is not.
    """
    grid = model.grid
    land = ~model.initially_wet
    field = _dem_field(region)
    if land.all():
        raise InputError(region.path, field, f"grid {grid.name!r} {_bounds(grid)} has no "
                         f"water below the still level ({scenario.still_water_level:g} m): a "
                         "tsunami has nothing to cross. Check the DEM's sign (vertical = "
                         "\"elevation\" or \"depth\"), its CRS, and still_water_level")
    share = float(land.mean())
    sides = [side for side, kind in region.spec(grid.name).boundaries.items()
             if kind == "open"]
    edge = np.concatenate([_side(land, side) for side in sides]) if sides else None
    edge_share = float(edge.mean()) if edge is not None else share
    if share > SWAPPED_LAND_SHARE and edge_share > SWAPPED_LAND_SHARE:
        where = (f"{edge_share:.0%} of its open sides ({', '.join(sides)})" if sides
                 else "it has no open side")
        input_warning(Finding(str(region.path), field, f"grid {grid.name!r} is {share:.0%} "
                              f"land and {where} is land: are land and sea swapped? A DEM "
                              "of elevations (positive up) read with vertical = \"depth\", "
                              "or the reverse, does this"), findings, stacklevel=3)


def check_towns(region, model, names: list[str] | None = None,
                findings: list[Finding] | None = None) -> None:
    """Warn about a town with no land cell on any grid: its maps can show no flooding.

    ``model``: the model, or a list of grids' models; ``names``: only these towns."""
    models = model.models if hasattr(model, "models") else model
    for k, town in enumerate(region.towns):
        if names is not None and town.name not in names:
            continue
        west, east, south, north = town.extent
        land = False
        for m in models:
            g = m.grid
            cols = (g.x >= west) & (g.x <= east)
            rows = (g.y >= south) & (g.y <= north)
            if cols.any() and rows.any():
                land |= bool((~m.initially_wet[np.ix_(rows, cols)]).any())
        if not land:
            input_warning(Finding(str(region.path), f"town[{k}].extent", f"town {town.name!r} "
                                  f"{list(town.extent)} has no land cell on any grid: it lies "
                                  "entirely at sea, so its maps can show no flooding. Check "
                                  "its extent"), findings, stacklevel=3)


def check_source(scenario, model, uplift: dict[str, np.ndarray] | None = None,
                 raster: Raster | None = None, grids: list | None = None,
                 reach: bool = True, findings: list[Finding] | None = None
                 ) -> dict[str, np.ndarray] | None:
    """Refuse a source that never reaches the outer grid's water or has holes in it.

    ``model`` is the model (one grid or a nest; ``model.models[0]`` is the outermost);
    ``uplift`` the source's sea-surface displacement (m, NaN where a raster has no data)
    by grid name, the outermost grid's at least, None for an incident wave; ``raster``
    the displacement raster, if the source is one. The rule is the same for every
    source: its largest displacement over the outer grid's wet cells must exceed
    :data:`SOURCE_REACH` of its own peak. A raster must also have no hole over water
    inside its footprint, on any grid, where the displacement around the hole is
    significant (:data:`HOLE_RIM`); an incident wave must act within the run, enter
    through a side with water, and be smaller than :data:`BREAKING_RATIO` of the depth
    there. Errors name the scenario file, the source field and where the source lies
    against the grid. Returns ``uplift`` with the harmless holes set to zero.
    ``grids``: the grids ``uplift`` is for (default all of the model's); ``reach=False``
    checks only the holes (a town's grids in :mod:`tsunami.fanout`, whose regional stage
    checked the reach). ``findings``: where a harmless hole is reported (module doc).
    """
    from tsunami.scenario import DisplacementSource, FaultSource

    source = scenario.source
    outer = model.models[0]
    if isinstance(source, DisplacementSource):
        field = f"{source.field}.path"
        peak = float(np.nanmax(np.abs(raster.values)))
        what = f"the displacement raster {source.path.name} (peak {peak:.3g} m)"
        where = _raster_where(raster, outer.grid)
        uplift = {m.grid.name: _without_holes(scenario, field, raster, m, uplift[m.grid.name],
                                              peak, findings) for m in (grids or model.models)}
        if not reach:
            return uplift
    elif isinstance(source, FaultSource):
        field = "source.path" if source.path is not None else "source"
        peak = max(s.slip for s in source.subfaults)
        lon, lat, _ = source.fault.hypocentre or source.subfaults[0].centroid
        what = (f"the {source.kind} source ({len(source.subfaults)} subfault(s), up to "
                f"{peak:.3g} m of slip, near {lon:.3f} E, {lat:.3f} N)")
        where = f"Grid {outer.grid.name!r} spans {_bounds(outer.grid, lonlat=True)}"
    else:
        _check_wave(scenario, outer)
        return None
    values = np.where(outer.initially_wet, uplift[outer.grid.name], np.nan)
    largest = float(np.nanmax(np.abs(values), initial=0.0))
    if peak == 0.0:
        raise InputError(scenario.path, field, f"{what} is zero everywhere: nothing moves")
    if largest <= SOURCE_REACH * peak:
        raise InputError(scenario.path, field, f"{what} does not reach the water of grid "
                         f"{outer.grid.name!r}: at most {largest:.2g} m over its wet cells. "
                         f"{where}")
    return uplift


def _without_holes(scenario, field: str, raster: Raster, model, uplift: np.ndarray,
                   peak: float, findings: list[Finding] | None) -> np.ndarray:
    """``uplift`` on one grid with the raster's harmless holes over water set to zero; a
    hole with significant displacement around it is an error."""
    grid, wet = model.grid, model.initially_wet
    footprint = np.isfinite(resample(Raster(np.ones_like(raster.values), raster.transform,
                                            raster.crs, raster.source), grid, "nearest"))
    nearest = resample(raster, grid, "nearest")
    holes = footprint & wet & ~np.isfinite(nearest)
    labels, count = ndimage.label(holes, structure=np.ones((3, 3)))
    name = Path(raster.source).name
    for k in range(1, count + 1):
        hole = labels == k
        rim = ndimage.binary_dilation(hole, structure=np.ones((3, 3))) & np.isfinite(nearest)
        around = float(np.abs(nearest[rim]).max()) if rim.any() else 0.0
        j, i = (int(v) for v in np.argwhere(hole).mean(axis=0).round())
        place = f"around x = {grid.x[i]:.4f}, y = {grid.y[j]:.4f} of grid {grid.name!r}"
        if around > HOLE_RIM * peak:
            raise InputError(scenario.path, field, f"{name} has no data over "
                             f"{int(hole.sum())} wet cells {place}, where the displacement "
                             f"around reaches {around:.3g} m (peak {peak:.3g} m): the source "
                             "is missing where it matters; fill the hole")
        input_warning(Finding(str(scenario.path), field, f"{name} has no data over "
                              f"{int(hole.sum())} wet cells {place}; read as zero (at most "
                              f"{around:.2g} m around them)"), findings, stacklevel=4)
    return np.where(holes, 0.0, uplift)


def _check_wave(scenario, model) -> None:
    source = scenario.source
    wave, field = source.wave, "source.path"
    name = source.path.name
    start, end = float(wave.time[0]), float(wave.time[-1])
    if end < 0.0 or start > scenario.duration:
        raise InputError(scenario.path, field, f"the incident wave {name} covers t = "
                         f"{start:g}...{end:g} s, outside the run (0...{scenario.duration:g} s): "
                         "it would force nothing. Times are seconds after the start")
    inside = (wave.time >= 0.0) & (wave.time <= scenario.duration)
    samples = np.concatenate([wave.eta[inside], [wave.elevation(0.0),
                                                 wave.elevation(scenario.duration)]])
    amplitude = float(np.abs(samples).max())
    peak = float(np.abs(wave.eta).max())
    if amplitude <= SOURCE_REACH * peak or amplitude == 0.0:
        raise InputError(scenario.path, field, f"the incident wave {name} is zero over the "
                         f"run (0...{scenario.duration:g} s): it would force nothing")
    depth = _side(np.where(model.initially_wet, model.h.astype(np.float64), np.nan),
                  source.side)
    if not np.isfinite(depth).any():
        raise InputError(scenario.path, "source.side", f"the {source.side} side of grid "
                         f"{model.grid.name!r} is dry: the incident wave {name} cannot enter")
    deepest = float(np.nanmax(depth))
    if amplitude > BREAKING_RATIO * deepest:
        raise InputError(scenario.path, field, f"the incident wave {name} reaches "
                         f"{amplitude:.3g} m, more than {BREAKING_RATIO} of the still depth "
                         f"({deepest:.3g} m at most) on the {source.side} side of grid "
                         f"{model.grid.name!r}: such a wave breaks before it enters")


def _side(values: np.ndarray, side: str) -> np.ndarray:
    """The cells along one side of a (south-to-north) grid array."""
    return {"west": values[:, 0], "east": values[:, -1], "south": values[0],
            "north": values[-1]}[side]


def _dem_field(region) -> str:
    """The region field to blame for the water: the first [[dem]] read as depth, if any."""
    for dem in region.dems:
        if dem.vertical == "depth":
            return f"{dem.field}.vertical"
    return "dem"


def _bounds(grid: Grid, lonlat: bool = False) -> str:
    if lonlat and grid.crs is not None and not grid.spherical:
        return bounds_text(*transform_bounds(grid.crs, "EPSG:4326", *grid.bounds),
                           degrees=True)
    return grid.bounds_text


def _raster_where(raster: Raster, grid: Grid) -> str:
    """Where a raster lies against the grid, in the grid's CRS, with a hint. (Longitudes
    0...360 against -180...180 need no hint: the warp wraps them.)"""
    west, south, east, north = raster.bounds
    crs = raster.crs
    try:
        if crs is not None and grid.crs is not None and crs != grid.crs:
            west, south, east, north = transform_bounds(crs, grid.crs, west, south, east,
                                                        north)
    except Exception:  # GDAL raises several kinds when the CRSs do not meet: say so
        return (f"It lies at {raster.bounds} in {crs.name}, which does not map onto the "
                f"grid's CRS; grid {grid.name!r} spans {_bounds(grid)}. Check its CRS")
    gw, gs, ge, gn = grid.bounds
    text = (f"The raster spans x {west:.6g}...{east:.6g}, y {south:.6g}...{north:.6g} in the "
            f"region's CRS; grid {grid.name!r} spans {_bounds(grid)}.")
    if not (west < ge and east > gw and south < gn and north > gs):
        return (f"{text} They do not overlap: check the raster's CRS "
                f"({crs.name if crs else 'local frame'}) and coordinates")
    return f"{text} It covers only land or still water there"
