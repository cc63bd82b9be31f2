"""Activity tracking: skipping the dry land far from water (tsunami.kernels.spans) changes
no result, bit for bit."""

import dataclasses

import numpy as np
import pytest

from tsunami import (
    Boundaries,
    Grid,
    IncidentWave,
    NestedModel,
    ShallowWaterModel,
    Simulation,
    Wall,
    kernels,
)
from tsunami.source import KinematicRupture, Subfault, rupture_times

FIELDS = ("eta", "M", "N", "eta_max", "arrival_time", "speed_max", "momentum_flux_max")
R = 3


def dike_coast(x, y):
    """Still depth (m): a beach from 10 m deep in the west to the shore at x = 2 km, then
    land 0.5 m high up to hills east of x = 2.7 km, behind a 6 m dike between y = 600 and
    1800 m only. The wave floods the land around the dike's ends and flows behind it, over
    dry land, from the south and north."""
    ground = np.maximum(np.minimum(-10.0 + 20.0 * x / 4000.0, 0.5), (x - 2700.0) / 40.0)
    dike = (x >= 2100) & (x <= 2300) & (y >= 600) & (y <= 1800)
    return -np.where(dike, 6.0, ground)


def dike_nest(track: bool, child_scheme: str = "leapfrog") -> NestedModel:
    """A parent of 100 m cells and a child (ratio 3) over the dike: the child's south and
    north edges cross the land the flood comes over."""
    t = np.linspace(0.0, 900.0, 91)
    wave = IncidentWave(t, np.where(t < 400, 2.5 * np.sin(np.pi * t / 400) ** 2, 0.0))
    parent_grid = Grid(nx=40, ny=24, x0=0.0, y0=0.0, dx=100.0, dy=100.0, name="parent")
    child_grid = Grid(nx=16 * R, ny=12 * R, x0=1600.0, y0=600.0, dx=100.0 / R,
                      dy=100.0 / R, name="child")
    models = []
    for grid, boundaries, scheme in (
            (parent_grid, Boundaries(west=wave, east=Wall(), south=Wall(), north=Wall()),
             "leapfrog"), (child_grid, None, child_scheme)):
        x, y = np.meshgrid(grid.x, grid.y)
        models.append(ShallowWaterModel(grid, dike_coast(x, y), manning=0.025,
                                        boundaries=boundaries, scheme=scheme,
                                        track_activity=track))
    return NestedModel([(models[0], None, None), (models[1], "parent", R)])


def assert_identical(tracked, full):
    for a, b in zip(tracked.models, full.models, strict=True):
        assert a.iteration == b.iteration and a.time == b.time
        for name in FIELDS:
            assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), (
                a.grid.name, name)


@pytest.mark.parametrize("child_scheme", ["leapfrog", "fv2"])
def test_skipping_dry_land_changes_nothing_in_a_nest_flooding_across_its_edges(child_scheme):
    """For either scheme on the child (fv2 fails it with no span margin)."""
    runs = {}
    inflow_over_dry_land = []

    def watch(model):  # a child edge cell without water, given the parent's inflow
        if model.grid.name == "child":
            dry = (model.eta + model.h)[[0, -1]] == 0
            inflow = np.stack([model.edge_flux["south"] > 0, model.edge_flux["north"] < 0])
            inflow_over_dry_land.append(bool(np.any(dry & inflow)))

    for track in (True, False):
        nest = dike_nest(track, child_scheme)
        nest.after_step.append(watch)
        Simulation(nest, 900.0).run()
        runs[track] = nest
    assert_identical(runs[True], runs[False])
    parent, child = runs[True].models
    # what the test is about happened: the flood reached the land behind the dike, came
    # into the child over dry edge cells, and the tracked run skipped cells
    behind = (child.grid.x > 2300)[None, :] & (child.h < 0)
    assert np.isfinite(child.eta_max[behind]).sum() > 100
    assert any(inflow_over_dry_land)
    assert 0.3 < child.active_fraction < 1 and 0.3 < parent.active_fraction < 1
    assert all(m.active_fraction == 1 for m in runs[False].models)


def test_an_fv2_child_takes_the_parents_inflow_over_dry_edge_cells():
    """fv2 computes a grid-edge face only where the spans reach the edge: they must hold
    an edge cell given inflow even where the child has no water near it (the flood coming
    around the dike's ends), or the parent's inflow is lost there."""
    checked = []

    def inflow_taken(model):
        if model.grid.name != "child":
            return
        for side, faces, inward in (("west", model.M[:, 0], 1), ("east", model.M[:, -1], -1),
                                    ("south", model.N[0], 1), ("north", model.N[-1], -1)):
            q = model.edge_flux[side]
            inflow = inward * q > 0
            assert np.array_equal(faces[inflow], q[inflow]), side
            checked.append(int(inflow.sum()))

    nest = dike_nest(True, child_scheme="fv2")
    nest.after_step.append(inflow_taken)
    Simulation(nest, 900.0).run()
    child = nest.models[1]
    behind = (child.grid.x > 2300)[None, :] & (child.h < 0)
    assert np.isfinite(child.eta_max[behind]).sum() > 100 and sum(checked) > 0
    assert child.active_fraction < 1


def test_skipping_dry_land_changes_nothing_under_a_kinematic_rupture():
    """A rupture raising the sea surface near a low coast during the run, on a nest in
    longitude/latitude."""
    whole = Subfault(139.08, 41.13, 3000.0, 0.0, 20.0, 90.0, 6.0, 20e3, 10e3)
    parts = whole.split(2, 1)
    onsets = rupture_times(parts, whole.centroid, 2500.0)
    subfaults = [dataclasses.replace(p, rupture_time=float(t), rise_time=20.0)
                 for p, t in zip(parts, onsets, strict=True)]
    runs = {}
    for track in (True, False):
        models = []
        for grid in (Grid(nx=40, ny=30, x0=139.0, y0=41.0, dx=0.01, dy=0.01, crs="EPSG:4326",
                          name="sea"),
                     Grid(nx=36, ny=30, x0=139.12, y0=41.08, dx=0.01 / R, dy=0.01 / R,
                          crs="EPSG:4326", name="coast")):
            east = grid.x[None, :] - 139.15 + 0 * grid.y[:, None]  # the shore at 139.15 E
            depth = np.where(east < 0, -1000.0 * east, -200.0 * east)  # land 2.4 mm/m
            models.append(ShallowWaterModel(grid, depth, manning=0.025,
                                            boundaries=Boundaries.all(Wall()),
                                            track_activity=track))
        nest = NestedModel([(models[0], None, None), (models[1], "sea", R)])
        rupture = KinematicRupture(nest, subfaults)
        rupture.start(nest)
        Simulation(nest, 600.0, callbacks=[rupture]).run()
        runs[track] = nest
    assert_identical(runs[True], runs[False])
    coast = runs[True].models[1]
    assert np.isfinite(coast.eta_max[coast.h < 0]).sum() > 20  # land flooded
    assert coast.active_fraction < 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_leapfrog_kernels_give_the_same_bits_over_any_part_of_a_row(dtype):
    """Every row loop over random spans computes, where it writes, exactly what it does in
    a loop over the whole row (LLVM's vector chunks and scalar remainders round
    differently: the loops widen a span to whole blocks)."""
    grid = Grid(nx=300, ny=24, x0=0.0, y0=0.0, dx=20.0, dy=20.0, name="strip")
    x, y = np.meshgrid(grid.x, grid.y)
    model = ShallowWaterModel(grid, 20.0 - x / 200.0 + 2 * np.sin(y / 50.0), manning=0.03,
                              dtype=dtype)
    rng = np.random.default_rng(5)
    model.set(eta=np.where(model.h > 0, rng.normal(0.0, 0.3, grid.shape), 0.0),
              u=rng.normal(0.0, 1.0, grid.shape), v=rng.normal(0.0, 1.0, grid.shape))
    for _ in range(3):
        model.step()
    m, s, ny, nx = model.metrics, model._scalars, grid.ny, grid.nx
    dt = model.dtype.type(model.dt)

    def run(lo, hi, counted):
        out = {"eta": model.eta.copy(), "eta_max": model.eta_max.copy(),
               "arrival_time": model.arrival_time.copy(), "M": np.zeros_like(model.M),
               "N": np.zeros_like(model.N), "speed_max": model.speed_max.copy(),
               "momentum_flux_max": model.momentum_flux_max.copy(),
               "rates": np.zeros(ny, model.dtype), "ratio": np.ones(grid.shape, model.dtype)}
        kernels.update_flow_maxima(model.eta, model.h, model.M, model.N, s["dry"],
                                   *model.edge_depth.values(), s["speed_depth"], lo, hi,
                                   out["speed_max"], out["momentum_flux_max"])
        kernels.wave_rate_rows(model.eta, model.h, model.M, model.N, s["g"], s["dry"],
                               *model.edge_depth.values(), s["speed_depth"],
                               counted, m.inv_dx_c, m.inv_dy, lo, hi, out["rates"])
        kernels.update_surface(out["eta"], model.h, model.M, model.N, m.inv_dx_c, m.inv_dy,
                               m.cos_north, m.cos_south, dt, lo, hi, 1.0, s["dry"],
                               s["threshold"], out["eta_max"], out["arrival_time"])
        limit = np.zeros(ny + 1, np.uint8)
        kernels.update_fluxes(model.eta, model.h, model.n2, model.M, model.N, out["M"],
                              out["N"], m.inv_dx_c, m.inv_dx_v, m.inv_dy, m.coriolis_c,
                              m.coriolis_v, m.cos_north, m.cos_south, dt, s["g"], s["dry"],
                              s["linear"], s["umax"], lo, hi, limit)
        limit[:] = 1
        kernels.limit_outflow(model.eta, model.h, out["M"].copy(), out["N"].copy(),
                              m.inv_dx_c, m.inv_dy, m.cos_north, m.cos_south, 10 * dt, lo,
                              hi, limit, out["ratio"])
        return out

    whole = np.zeros(ny, np.int64), np.full(ny, nx, np.int64)
    full = run(*whole, model.time_step_cells)
    for _ in range(12):
        lo = rng.integers(0, nx, ny)
        hi = np.minimum(lo + rng.integers(1, nx, ny), nx)
        part = run(lo, hi, model.time_step_cells)
        # the time step's rates over the same cells (only those counted)
        counted = np.zeros(grid.shape, np.uint8)
        for j in range(ny):
            counted[j, lo[j]:hi[j]] = 1
        assert np.array_equal(run(lo, hi, counted)["rates"], run(*whole, counted)["rates"])
        for j in range(ny):
            cells = slice(lo[j], hi[j])
            for name in ("eta", "eta_max", "arrival_time", "speed_max",
                         "momentum_flux_max", "ratio"):
                assert np.array_equal(part[name][j, cells], full[name][j, cells],
                                      equal_nan=True), (name, j)
            assert np.array_equal(part["M"][j, max(lo[j], 1):min(hi[j], nx - 1) + 1],
                                  full["M"][j, max(lo[j], 1):min(hi[j], nx - 1) + 1])
            if j:
                faces = slice(min(lo[j - 1], lo[j]), max(hi[j - 1], hi[j]))
                assert np.array_equal(part["N"][j, faces], full["N"][j, faces]), j
