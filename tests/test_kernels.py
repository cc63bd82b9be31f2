"""Kernel and single-grid model tests: exact properties and analytical behaviour."""

import numpy as np
import pytest
from numba import njit

from tsunami import BlowUpError, Boundaries, Grid, IncidentWave, Open, ShallowWaterModel, Wall
from tsunami.kernels import limit_outflow, update_surface
from tsunami.kernels.scalar import inverse_cbrt
from tsunami.simulation import Simulation


@njit(cache=True)
def _inverse_cbrt_all(values):
    out = np.empty_like(values)
    for k in range(values.size):
        out[k] = inverse_cbrt(values[k])
    return out


@pytest.mark.parametrize("dtype, tolerance", [(np.float32, 5e-7), (np.float64, 1e-14)])
def test_inverse_cube_root_matches_numpy(dtype, tolerance):
    x = np.logspace(-7, 5, 20001).astype(dtype)
    exact = 1.0 / np.cbrt(x.astype(np.float64))
    assert np.max(np.abs(_inverse_cbrt_all(x) / exact - 1.0)) < tolerance


def test_kernels_leave_the_floating_point_mode_as_they_found_it():
    grid = Grid(nx=8, ny=8, x0=0, y0=0, dx=1.0, dy=1.0)
    model = ShallowWaterModel(grid, np.ones(grid.shape))
    model.step()
    tiny = np.array([1e-39], np.float32)  # subnormal in float32
    assert (tiny * np.float32(0.5))[0] != 0.0


def channel(nx=400, depth=10.0, dx=10.0, **kwargs):
    grid = Grid(nx=nx, ny=3, x0=0.0, y0=0.0, dx=dx, dy=10 * dx, name="channel")
    return ShallowWaterModel(grid, np.full(grid.shape, depth), **kwargs)


def test_positivity_limiter_conserves_volume_and_keeps_depth_non_negative():
    rng = np.random.default_rng(1)
    grid = Grid(nx=40, ny=30, x0=0, y0=0, dx=1.0, dy=1.0)
    ny, nx = grid.shape
    h = rng.uniform(-0.05, 0.05, grid.shape).astype(np.float64)
    eta = np.maximum(rng.uniform(0.0, 0.01, grid.shape), -h)
    m = grid.metrics(np.float64)
    M = rng.normal(0, 0.05, (ny, nx + 1))
    N = rng.normal(0, 0.05, (ny + 1, nx))
    M[:, [0, nx]] = 0
    N[[0, ny]] = 0
    depth_before = eta + h
    lo, hi = np.zeros(ny, np.int64), np.full(ny, nx, np.int64)
    flags = np.ones(ny + 1, np.uint8)
    limit_outflow(eta, h, M, N, m.inv_dx_c, m.inv_dy, m.cos_north, m.cos_south, 1.0, lo, hi,
                  flags, np.ones(grid.shape))
    maxima = [np.full(grid.shape, -np.inf), np.full(grid.shape, np.nan)]
    update_surface(eta, h, M, N, m.inv_dx_c, m.inv_dy, m.cos_north, m.cos_south, 1.0, lo, hi,
                   1.0, 1e-6, 0.2, *maxima)
    depth_after = eta + h
    assert depth_after.min() >= 0.0
    assert abs(depth_after.sum() - depth_before.sum()) < 1e-12 * depth_before.sum() + 1e-15


def gaussian(model, centre, width, amplitude):
    return amplitude * np.exp(-((model.grid.x - centre) / width) ** 2)


def test_open_boundary_lets_a_long_wave_leave():
    model = channel(boundaries=Boundaries(west=Wall(), east=Open(), south=Wall(), north=Wall()),
                    dtype=np.float64)
    model.set(eta=np.broadcast_to(gaussian(model, 3000.0, 300.0, 0.1), model.grid.shape),
              u=np.broadcast_to(np.sqrt(9.81 / 10.0) * gaussian(model, 3000.0, 300.0, 0.1),
                                model.grid.shape))
    # The pulse reaches the east edge at ~100 s and is gone by 250 s; a reflection would
    # still be in the channel at 400 s.
    Simulation(model, 400.0).run()
    assert np.abs(model.eta).max() < 0.03 * 0.1


def test_wall_reflects_and_conserves_volume():
    model = channel(boundaries=Boundaries.all(Wall()), dtype=np.float64)
    model.set(eta=np.broadcast_to(gaussian(model, 2000.0, 300.0, 0.1), model.grid.shape))
    volume = model.volume()
    Simulation(model, 600.0).run()
    assert abs(model.volume() / volume - 1.0) < 1e-12
    assert np.abs(model.M[:, [0, -1]]).max() == 0.0


def test_incident_wave_enters_with_its_amplitude_and_celerity():
    times = np.linspace(0.0, 400.0, 801)
    amplitude = 0.005  # linear: the crest travels at sqrt(g h)
    wave = IncidentWave(times, amplitude * np.exp(-((times - 100.0) / 30.0) ** 2))
    model = channel(nx=600, boundaries=Boundaries(west=wave, east=Open(), south=Wall(),
                                                 north=Wall()), dtype=np.float64)
    x_probe = 2000.0
    i = int(x_probe / model.grid.dx)
    series = []

    def probe(m):
        series.append((m.time, float(m.eta[1, i])))

    Simulation(model, 400.0, callbacks=[probe]).run()
    t, eta = np.array(series).T
    celerity = np.sqrt(9.81 * 10.0)
    assert abs(eta.max() / amplitude - 1.0) < 0.03
    assert abs(t[np.argmax(eta)] - (100.0 + model.grid.x[i] / celerity)) < 2.0


def test_linear_wave_travels_at_sqrt_gh_on_a_spherical_grid():
    # A plane wave running east along 40 N: 2 degrees of longitude at sqrt(g h).
    grid = Grid(nx=400, ny=20, x0=140.0, y0=39.95, dx=0.01, dy=0.005, crs="EPSG:4326",
                name="sphere", coriolis=False)
    depth = 100.0
    model = ShallowWaterModel(grid, np.full(grid.shape, depth), dtype=np.float64,
                              boundaries=Boundaries(west=Open(), east=Open(), south=Wall(),
                                                    north=Wall()))
    lon = grid.x[None, :]
    model.set(eta=np.broadcast_to(0.01 * np.exp(-((lon - 140.5) / 0.05) ** 2), grid.shape),
              u=np.broadcast_to(np.sqrt(9.81 / depth) * 0.01
                                * np.exp(-((lon - 140.5) / 0.05) ** 2), grid.shape))
    Simulation(model, 2000.0).run()
    crest = grid.x[np.argmax(model.eta[10])]
    metres = np.deg2rad(crest - 140.5) * 6_371_000.0 * np.cos(np.deg2rad(40.0))
    assert abs(metres / (np.sqrt(9.81 * depth) * model.time) - 1.0) < 0.01


def test_coriolis_turns_a_uniform_current_clockwise_in_the_north():
    # Inertial oscillation: with no pressure gradient, u0 east becomes -u0 north... after
    # a quarter period 2 pi / f / 4 (northern hemisphere, clockwise).
    grid = Grid(nx=120, ny=120, x0=135.0, y0=39.0, dx=0.05, dy=0.05, crs="EPSG:4326",
                name="basin")
    model = ShallowWaterModel(grid, np.full(grid.shape, 20.0), dtype=np.float64, cfl=0.5)
    model.set(u=np.full(grid.shape, 0.1))
    f = 2 * 7.2921e-5 * np.sin(np.deg2rad(grid.y[60]))
    quarter = 0.25 * 2 * np.pi / f
    Simulation(model, quarter).run()
    u, v = model.velocities()
    assert abs(u[60, 60]) < 0.01 and abs(v[60, 60] + 0.1) < 0.005


def test_blow_up_stops_the_run_naming_grid_time_and_place():
    model = channel(dt=5.0)  # far beyond the CFL limit of ~0.7 s
    model.set(eta=np.broadcast_to(gaussian(model, 2000.0, 100.0, 0.5), model.grid.shape))
    with pytest.raises(BlowUpError, match=r"grid 'channel' at t = .* near x = "):
        Simulation(model, 2000.0, health_interval=5).run()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_health_check_finds_each_kind_of_blow_up_and_only_where_it_counts(dtype):
    # The kernel pass (what a healthy grid costs) must let through exactly what the
    # whole-grid test lets through, and send every kind of fault on to be reported.
    grid = Grid(nx=70, ny=40, x0=0.0, y0=0.0, dx=50.0, dy=50.0, name="bay")
    h = np.full(grid.shape, 100.0)
    h[:, 60:] = -5.0  # land in the east
    model = ShallowWaterModel(grid, h, dtype=dtype, dt=1.0)  # Courant number 0.89 at rest
    model.step()
    ignore = np.zeros(grid.shape, bool)
    ignore[10:20, 10:20] = True  # cells a finer grid covers

    def fault(change):
        model.eta[...] = np.maximum(0.0, -model.h)
        model.M[...] = 0.0
        change()

    def raises(match, mask=ignore):
        with pytest.raises(BlowUpError, match=match):
            model.check_health(ignore=mask)

    fault(lambda: None)
    model.check_health(ignore=ignore)  # at rest
    fault(lambda: model.eta.__setitem__((15, 15), np.nan))
    raises("not finite")  # a non-finite value counts even where a finer grid covers
    fault(lambda: model.eta.__setitem__((15, 15), 250.0))
    model.check_health(ignore=ignore)  # a departure there does not
    raises("departs more than 200 m", mask=None)
    fault(lambda: model.eta.__setitem__((30, 64), np.inf))  # on land
    raises("not finite")
    # 3000 m3/s/m through 100 m of water: 30 m/s, a Courant number of about 1.7.
    fault(lambda: model.M.__setitem__((slice(30, 31), slice(30, 32)), 3000.0))
    raises("CFL limit")
    fault(lambda: model.M.__setitem__((slice(15, 16), slice(15, 17)), 3000.0))
    model.check_health(ignore=ignore)
    # 20 m/s (a Courant number of about 1.45) passes.
    fault(lambda: model.M.__setitem__((slice(30, 31), slice(30, 32)), 2000.0))
    model.check_health(ignore=ignore)


def test_float32_and_float64_agree_on_a_runup_problem():
    from tsunami.validation.beach import run_solitary_wave

    r32 = run_solitary_wave(0.019, dx=0.1, stop=70.0, dtype=np.float32)
    r64 = run_solitary_wave(0.019, dx=0.1, stop=70.0, dtype=np.float64)
    assert abs(r32.runup - r64.runup) < 1e-4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_parent_takes_the_highest_child_value_in_each_block(dtype):
    from tsunami.kernels.nesting import restrict_max

    rng = np.random.default_rng(3)
    child = rng.random((9 * 3, 7 * 3)).astype(dtype)
    parent = np.full((12, 10), -1.0, dtype)
    restrict_max(child, parent, 2, 1, 3)
    assert np.array_equal(parent[2:11, 1:8], child.reshape(9, 3, 7, 3).max(axis=(1, 3)))
    outside = np.ones(parent.shape, bool)
    outside[2:11, 1:8] = False
    assert (parent[outside] == -1.0).all()


def test_a_model_without_flow_maxima_gives_the_same_surface_and_has_no_speed_maps():
    # flow_maxima=False skips the speed and momentum-flux maxima (the linear unit-source
    # runs): every other result is bit for bit the same, and the maps are absent rather
    # than zeros a product could be made from.
    from tsunami.fields import maxima_dataset

    grid = Grid(nx=40, ny=30, x0=0.0, y0=0.0, dx=100.0, dy=100.0, name="slope")
    x = (np.arange(grid.nx) + 0.5) * grid.dx
    depth = np.broadcast_to(30.0 - 34.0 * x / x[-1], grid.shape).copy()  # sea to land
    yy, xx = np.meshgrid(grid.y, grid.x, indexing="ij")
    hump = 1.5 * np.exp(-((xx - 1200.0) ** 2 + (yy - 1500.0) ** 2) / 400.0**2)
    runs = {}
    for flow_maxima in (True, False):
        for linear_depth in (np.inf, 0.0):
            model = ShallowWaterModel(grid, depth, manning=0.025, linear_depth=linear_depth,
                                      flow_maxima=flow_maxima)
            model.set(eta=np.where(depth > 0, hump, 0.0) - np.minimum(depth, 0.0))
            for _ in range(120):
                model.step()
            runs[flow_maxima, linear_depth] = model
    for linear_depth in (np.inf, 0.0):
        full, bare = runs[True, linear_depth], runs[False, linear_depth]
        assert full.speed_max.max() > 0.1  # the flow ran
        assert bare.time == full.time and bare.iteration == full.iteration
        for name in ("eta", "M", "N", "eta_max", "arrival_time"):
            assert getattr(bare, name).tobytes() == getattr(full, name).tobytes(), name
        assert not hasattr(bare, "speed_max") and not hasattr(bare, "momentum_flux_max")
        with pytest.raises(AttributeError, match="flow_maxima=False"):
            maxima_dataset(bare)
    with pytest.raises(ValueError, match="leapfrog"):
        ShallowWaterModel(grid, depth, scheme="fv2", flow_maxima=False)
