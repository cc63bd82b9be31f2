"""Earthquake sources: Okada check values, scaling laws, sea-surface filters, kinematic
rupture, scenario files with fault sources and a short run from an alert."""

import dataclasses
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from tsunami.boundaries import Boundaries, Wall
from tsunami.errors import InputError
from tsunami.grid import EARTH_RADIUS, Grid
from tsunami.model import ShallowWaterModel
from tsunami.region import Region
from tsunami.runner import _provenance, build_model, run
from tsunami.scenario import FaultSource, Scenario
from tsunami.simulation import Simulation
from tsunami.source import (
    LAWS,
    KinematicRupture,
    Subfault,
    default_law,
    fault_from_alert,
    fault_sea_surface,
    kajiura_filter,
    magnitude_from_moment,
    moment_from_magnitude,
    okada85,
    read_subfault_csv,
    rupture_times,
    sea_surface,
    seafloor_displacement,
    tanioka_satake,
)

ROOT = Path(__file__).resolve().parents[1]

# -- Okada (1985) check values --------------------------------------------------------------
# Okada, Y. (1985), Surface deformation due to shear and tensile faults in a half-space,
# BSSA 75(4), 1135-1154, Table 2 ("check list" for numerical calculations, near the end of
# the paper; the page was not checked here). Observation point x = 2, y = 3; d = 4,
# dip = 70 degrees, lambda = mu; unit dislocation. Values to five significant figures as
# reproduced in the unit tests of mherman09/Hdef (src/okada92_unit_tests.f90, "example
# from Okada (1985)"), see shared/research/feeds_triggers_inversion.md, section 5.2.
FINITE_CASE = dict(x=2.0, y=3.0, depth=4.0, dip=70.0, length=3.0, width=2.0)
FINITE_VALUES = {  # (ux, uy, uz) for a finite rectangle L = 3, W = 2
    "strike": (-8.6892e-3, -4.2976e-3, -2.7474e-3),
    "dip": (-4.6823e-3, -3.5267e-2, -3.5639e-2),
    "tensile": (-2.6600e-4, 1.0564e-2, 3.2142e-3),
}
POINT_VALUES = {  # (ux, uy, uz) for a point source of unit potency at the same place
    "strike": (-9.4474e-4, -1.0230e-3, -7.4201e-4),
    "dip": (-1.1723e-3, -2.0820e-3, -2.5316e-3),
    "tensile": (-3.5716e-4, 3.5311e-4, -2.0068e-4),
}
UNIT = {"strike": (1.0, 0.0, 0.0), "dip": (0.0, 1.0, 0.0), "tensile": (0.0, 0.0, 1.0)}


@pytest.mark.parametrize("kind", ["strike", "dip", "tensile"])
def test_okada_1985_table_2_finite_rectangle(kind):
    u = okada85(**FINITE_CASE, strike_slip=UNIT[kind][0], dip_slip=UNIT[kind][1],
                tensile=UNIT[kind][2])
    for computed, published in zip(u, FINITE_VALUES[kind], strict=True):
        assert computed == pytest.approx(published, rel=1e-4), kind


@pytest.mark.parametrize("kind", ["strike", "dip", "tensile"])
def test_a_tiny_rectangle_matches_okada_1985_table_2_point_source(kind):
    """A 1 mm square with slip 1/area (unit potency), centred where Table 2 puts the point
    source (x = 2, y = 3, d = 4), reproduces the point-source values."""
    e = 1e-3
    cos, sin = np.cos(np.radians(70.0)), np.sin(np.radians(70.0))
    # Okada's reference corner half a side back along strike and down dip of the centre.
    u = okada85(2.0 + e / 2, 3.0 + e / 2 * cos, 4.0 + e / 2 * sin, 70.0, e, e,
                *(np.array(UNIT[kind]) / e**2))
    for computed, published in zip(u, POINT_VALUES[kind], strict=True):
        assert computed == pytest.approx(published, rel=1e-4), kind


def test_okada_broadcasts_over_points_and_sources():
    x = np.array([[2.0], [5.0]])
    dips = np.array([70.0, 45.0, 89.0])
    ux, _, uz = okada85(x, 3.0, 4.0, dips, 3.0, 2.0, 0.0, 1.0)
    assert ux.shape == (2, 3)
    assert uz[0, 0] == pytest.approx(FINITE_VALUES["dip"][2], rel=1e-4)
    single = okada85(5.0, 3.0, 4.0, 45.0, 3.0, 2.0, 0.0, 1.0)[2]
    assert uz[1, 1] == pytest.approx(single, rel=1e-12)


def test_vertical_dip_slip_is_antisymmetric_across_the_fault():
    """Dip slip on a vertical fault: the sides move in opposite senses (uz odd and uy even
    in y about the plane), and the limit dip -> 90 meets the vertical formulas."""
    x = np.linspace(-2.0, 5.0, 8)
    kw = dict(depth=4.0, dip=90.0, length=3.0, width=2.0, dip_slip=1.0)
    for y in (0.5, 1.5, 4.0):
        ux1, uy1, uz1 = okada85(x, y, **kw)
        ux2, uy2, uz2 = okada85(x, -y, **kw)
        assert np.allclose(uz1, -uz2, atol=1e-14)
        assert np.allclose(uy1, uy2, atol=1e-14)
        assert np.allclose(ux1, -ux2, atol=1e-14)
    near = okada85(2.0, 3.0, 4.0, 89.999, 3.0, 2.0, 1.0, 1.0, 1.0)
    exact = okada85(2.0, 3.0, 4.0, 90.0, 3.0, 2.0, 1.0, 1.0, 1.0)
    assert np.allclose(near, exact, rtol=5e-4)


def test_vertical_strike_slip_uplift_is_antisymmetric_along_strike():
    centre = 1.5  # the middle of a 3-long fault
    a = np.array([0.3, 1.0, 4.0])
    for y in (-2.0, 0.7, 3.0):
        _, _, up = okada85(centre + a, y, 4.0, 90.0, 3.0, 2.0, 1.0)
        _, _, down = okada85(centre - a, y, 4.0, 90.0, 3.0, 2.0, 1.0)
        assert np.allclose(up, -down, atol=1e-14)


def thrust(**changes):
    base = Subfault(longitude=140.0, latitude=0.0, depth=5000.0, strike=0.0, dip=20.0,
                    rake=90.0, slip=5.0, length=100e3, width=50e3)
    return dataclasses.replace(base, **changes)


def lonlat_at(east, north, lon0=140.0, lat0=0.0):
    """Points east/north metres from (lon0, lat0) at the equator (flat earth)."""
    return (lon0 + np.degrees(np.asarray(east) / EARTH_RADIUS),
            lat0 + np.degrees(np.asarray(north) / EARTH_RADIUS))


def test_geographic_subfault_matches_okada_in_its_own_frame():
    """Strike 0 at the equator: Okada's x is north, y is west; the top centre lies at
    x = L/2, y = W cos(dip) from Okada's origin, which is W sin(dip) below the top."""
    s = thrust()
    east = np.array([-30e3, 0.0, 20e3, 60e3, 150e3])
    north = np.array([10e3, -40e3, 0.0, 70e3, -5e3])
    ue, un, uz = seafloor_displacement([s], *lonlat_at(east, north))
    cos, sin = np.cos(np.radians(20.0)), np.sin(np.radians(20.0))
    ux, uy, uz_ok = okada85(north + 50e3, -east + 50e3 * cos, 5000.0 + 50e3 * sin, 20.0,
                            100e3, 50e3, 0.0, 5.0)
    # (to 1e-4: the flat-earth scale of longitude is cos(mid latitude), not exactly 1)
    assert np.allclose(uz, uz_ok, rtol=1e-4, atol=1e-9)
    assert np.allclose(un, ux, rtol=1e-4, atol=1e-9)
    assert np.allclose(ue, -uy, rtol=1e-4, atol=1e-9)


def test_a_thrust_lifts_its_hanging_wall_and_rotating_the_strike_rotates_the_field():
    s = thrust()  # strike north, dipping east: the hanging wall is to the east
    east = np.linspace(-100e3, 200e3, 61)
    _, _, uz = seafloor_displacement([s], *lonlat_at(east, 0.0 * east))
    # the peak lies over the fault, at or just down dip of its top edge (east = 0)...
    assert 0.0 <= east[np.argmax(uz)] < 50e3 * np.cos(np.radians(20.0)) and uz.max() > 1.0
    # ...the footwall barely moves, and the far side of the hanging wall subsides
    assert uz[east < -20e3].max() < 0.2 * uz.max() and uz[east > 60e3].min() < -0.1
    # The same fault striking 90 (dipping south) sees the same field rotated by 90 deg.
    rotated = thrust(strike=90.0)
    ue0, un0, uz0 = seafloor_displacement([s], *lonlat_at(east, 5e3))
    ue1, un1, uz1 = seafloor_displacement([rotated], *lonlat_at(5e3, -east))
    assert np.allclose(uz1, uz0, rtol=1e-4, atol=1e-6)
    assert np.allclose(ue1, un0, rtol=1e-4, atol=1e-6)
    assert np.allclose(un1, -ue0, rtol=1e-4, atol=1e-6)


def test_displacement_decays_in_the_far_field():
    s = thrust(slip=10.0)
    r = np.array([200e3, 400e3, 800e3])
    ue, un, uz = seafloor_displacement([s], *lonlat_at(25e3 + r, 0.0 * r))
    size = np.sqrt(ue**2 + un**2 + uz**2)
    assert size[0] < 0.02 * 10.0
    assert size[1] < size[0] / 3.0 and size[2] < size[1] / 3.0  # about r^-2 or faster


def test_subfaults_add_up_and_splitting_changes_nothing():
    whole = thrust(strike=30.0, rake=60.0)
    lon, lat = np.meshgrid(np.linspace(139.2, 141.5, 24), np.linspace(-1.0, 1.2, 20))
    reference = seafloor_displacement([whole], lon, lat)
    parts = whole.split(3, 2)
    assert len(parts) == 6 and parts[0].length == pytest.approx(whole.length / 3)
    summed = seafloor_displacement(parts, lon, lat)
    for a, b in zip(reference, summed, strict=True):
        # to 1e-4: each patch has its own flat-earth frame
        assert np.allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(a).max())
    # vectorised over subfaults = one subfault at a time
    one_by_one = [sum(c) for c in zip(*(seafloor_displacement([p], lon, lat) for p in parts),
                                      strict=True)]
    for a, b in zip(summed, one_by_one, strict=True):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-15)


def test_reference_points_describe_the_same_rectangle():
    s = thrust(strike=40.0, dip=35.0)
    lon, lat, depth = s.centroid
    assert depth == pytest.approx(5000.0 + 25e3 * np.sin(np.radians(35.0)))
    again = Subfault.from_reference("centroid", lon, lat, depth, 40.0, 35.0, 90.0, 5.0,
                                    100e3, 50e3)
    assert (again.longitude, again.latitude, again.depth) == pytest.approx(
        (s.longitude, s.latitude, s.depth), abs=1e-9)
    start = s.point(-50e3, 0.0)
    again = Subfault.from_reference("top_start", *start, 40.0, 35.0, 90.0, 5.0, 100e3, 50e3)
    assert (again.longitude, again.latitude) == pytest.approx((s.longitude, s.latitude),
                                                              abs=1e-9)
    with pytest.raises(ValueError, match="above the sea floor"):
        Subfault.from_reference("centroid", 140.0, 0.0, 2000.0, 0.0, 30.0, 90.0, 1.0, 1e4, 1e4)
    with pytest.raises(ValueError, match="dip"):
        thrust(dip=95.0)


# -- scaling laws -----------------------------------------------------------------------------
def test_strasser_interface_at_mw_8_by_hand():
    """log10 L = -2.477 + 0.585 * 8 = 2.203 -> 159.59 km; log10 W = -0.882 + 0.351 * 8
    = 1.926 -> 84.33 km; M0 = 10^(1.5 * 8 + 9.1) = 1.2589e21 N m; D = M0 / (4e10 L W)."""
    fault = fault_from_alert(142.0, 38.0, 30e3, 8.0, 200.0, 12.0, 90.0)
    s = fault.subfaults[0]
    assert fault.metadata["law"] == "strasser2010_interface"
    assert s.length == pytest.approx(159.59e3, rel=1e-4)
    assert s.width == pytest.approx(84.33e3, rel=1e-4)
    assert s.slip == pytest.approx(1.2589e21 / (4e10 * 159.59e3 * 84.33e3), rel=1e-3)
    assert fault.moment(4e10) == pytest.approx(moment_from_magnitude(8.0), rel=1e-12)
    assert magnitude_from_moment(fault.moment(4e10)) == pytest.approx(8.0, abs=1e-12)
    assert "Strasser" in fault.metadata["law_citation"]
    assert fault.metadata["rigidity_Pa"] == 4e10


def test_wells_coppersmith_reverse_at_mw_8_by_hand():
    """log10 L = -2.42 + 0.58 * 8 = 2.22 -> 165.96 km; log10 W = -1.61 + 0.41 * 8 = 1.67
    -> 46.77 km; mu = 30 GPa."""
    fault = fault_from_alert(139.0, 42.0, 20e3, 8.0, 0.0, 45.0, 90.0)
    s = fault.subfaults[0]
    assert fault.metadata["law"] == "wells_coppersmith1994_reverse"
    assert s.length == pytest.approx(165.96e3, rel=1e-4)
    assert s.width == pytest.approx(46.77e3, rel=1e-4)
    assert s.moment(3e10) == pytest.approx(moment_from_magnitude(8.0), rel=1e-12)


@pytest.mark.parametrize("law", sorted(LAWS))
def test_every_law_carries_the_moment_and_names_itself(law):
    fault = fault_from_alert(139.0, 42.0, 25e3, 7.2, 10.0, 40.0, 90.0, law=law)
    mu = fault.metadata["rigidity_Pa"]
    assert fault.moment(mu) == pytest.approx(moment_from_magnitude(7.2), rel=1e-12)
    assert fault.metadata["law"] == law and LAWS[law].citation == fault.metadata["law_citation"]


@pytest.mark.parametrize("dip, rake, law", [
    (12.0, 90.0, "strasser2010_interface"), (30.0, 120.0, "strasser2010_interface"),
    (50.0, 90.0, "wells_coppersmith1994_reverse"), (20.0, 20.0,
                                                    "wells_coppersmith1994_strike_slip"),
    (80.0, 180.0, "wells_coppersmith1994_strike_slip"),
    (60.0, -90.0, "wells_coppersmith1994_normal"), (60.0, 270.0,
                                                    "wells_coppersmith1994_normal"),
])
def test_default_law_by_mechanism(dip, rake, law):
    assert default_law(dip, rake) == law


def test_the_hypocentre_is_the_centroid_unless_the_fault_would_break_the_surface():
    deep = fault_from_alert(142.0, 38.0, 40e3, 8.0, 200.0, 12.0, 90.0)
    assert deep.subfaults[0].centroid == pytest.approx((142.0, 38.0, 40e3), abs=1e-9)
    shallow = fault_from_alert(142.0, 38.0, 10e3, 8.5, 200.0, 12.0, 90.0)
    s = shallow.subfaults[0]
    assert s.depth == pytest.approx(1000.0)
    # still on the fault plane: the hypocentre is up dip of the centroid
    sin = np.sin(np.radians(12.0))
    down = (10e3 - 1000.0) / sin
    assert 0 < down < 0.5 * s.width
    assert s.point(0.0, down) == pytest.approx((142.0, 38.0, 10e3), abs=1e-7)
    assert "down dip" in shallow.metadata["placement"]


# -- sea surface ------------------------------------------------------------------------------
def flat_grid(n=128, dx=1000.0):
    return Grid(nx=n, ny=n, x0=0.0, y0=0.0, dx=dx, dy=dx, crs="EPSG:32654", name="flat")


def test_kajiura_is_exact_for_a_cosine_on_uniform_depth():
    """cos(k x), symmetric about both edges, comes out as cos(k x) / cosh(k h)."""
    grid = flat_grid(n=64)
    x = grid.x[None, :] * np.ones((grid.ny, 1))
    k = 2 * np.pi / 16e3
    eta = kajiura_filter(np.cos(k * x), 3000.0, grid)
    # exact but for what wraps around the padding (8 depths: exp(-4 pi) of the kernel)
    assert np.allclose(eta, np.cos(k * x) / np.cosh(k * 3000.0), atol=1e-5)


def test_kajiura_keeps_volume_flattens_short_features_and_vanishes_in_shallow_water():
    grid = flat_grid()
    x, y = np.meshgrid(grid.x - 64e3, grid.y - 64e3)
    narrow = np.exp(-(x**2 + y**2) / (2 * 3e3**2))
    broad = np.exp(-(x**2 + y**2) / (2 * 30e3**2))
    deep = kajiura_filter(narrow, 4000.0, grid)
    assert deep.sum() == pytest.approx(narrow.sum(), rel=1e-6)
    assert deep.max() < 0.8 * narrow.max()
    assert kajiura_filter(broad, 4000.0, grid).max() > 0.98
    assert np.array_equal(kajiura_filter(narrow, 0.0, grid), narrow)
    assert np.allclose(kajiura_filter(narrow, 1.0, grid), narrow, atol=1e-4)
    # a varying depth: each cell is filtered for its own depth, land is left alone
    depth = np.where(x < 0, 4000.0, -10.0)
    mixed = kajiura_filter(narrow, depth, grid)
    assert np.array_equal(mixed[x >= 0], narrow[x >= 0])
    assert np.allclose(mixed[x < -5e3], deep[x < -5e3], atol=2e-3)


def test_tanioka_satake_is_zero_on_a_flat_bottom_and_ux_times_slope_on_a_ramp():
    grid = flat_grid(n=32)
    ux = np.full(grid.shape, 2.0)
    uy = np.full(grid.shape, -1.0)
    assert np.all(tanioka_satake(ux, uy, np.full(grid.shape, 1500.0), grid) == 0.0)
    ramp = 1000.0 + 0.05 * grid.x[None, :] + 0.02 * grid.y[:, None]  # deeper to the east
    uh = tanioka_satake(ux, uy, ramp, grid)
    assert np.allclose(uh, 2.0 * 0.05 - 1.0 * 0.02)
    eta = sea_surface(np.ones(grid.shape), ux, uy, ramp, grid, tanioka_satake=True)
    assert np.allclose(eta, 1.0 + 0.08)
    assert np.array_equal(sea_surface(np.ones(grid.shape), ux, uy, ramp, grid), 1.0 + 0 * eta)


# -- kinematic rupture ----------------------------------------------------------------------
def sea_model(n=40, depth=2000.0, dtype=np.float64):
    grid = Grid(nx=n, ny=n, x0=139.0, y0=41.0, dx=0.05, dy=0.05, crs="EPSG:4326", name="sea")
    return ShallowWaterModel(grid, np.full(grid.shape, depth), dtype=dtype,
                             boundaries=Boundaries.all(Wall()))


def rupture_subfaults():
    whole = Subfault(140.0, 41.5, 3000.0, 10.0, 25.0, 95.0, 3.0, 80e3, 40e3)
    parts = whole.split(4, 1)
    onsets = rupture_times(parts, whole.centroid, 2500.0)
    return [dataclasses.replace(p, rupture_time=float(t), rise_time=rise)
            for p, t, rise in zip(parts, onsets, (0.0, 5.0, 10.0, 20.0), strict=True)]


def test_the_rupture_ramps_each_subfault_and_ends_at_the_static_uplift():
    model = sea_model()
    subfaults = rupture_subfaults()
    rupture = KinematicRupture(model, subfaults, tanioka_satake=True, kajiura=True)
    static = fault_sea_surface(subfaults, model.grid, model.h, True, True)
    assert np.allclose(rupture.static_uplift("sea"), static, atol=1e-12)
    rupture.start(model)
    assert np.all(rupture.applied == rupture.fractions(0.0))
    previous = model.eta.copy()
    for t in np.linspace(0.0, rupture.end_time + 5.0, 17):
        model.time = float(t)  # the callback only reads the model's clock
        rupture(model)
        done = rupture.fractions(t)
        assert np.all((done >= 0) & (done <= 1))
        expected = np.tensordot(done, rupture.fields["sea"], axes=1)
        assert np.allclose(model.eta, expected, atol=1e-12)
        assert np.abs(model.eta).sum() >= np.abs(previous).sum() - 1e-9
        previous = model.eta.copy()
    assert np.allclose(model.eta, static, atol=1e-12)
    rupture(model)  # finished: nothing more is added
    assert np.allclose(model.eta, static, atol=1e-12)


def test_the_rupture_adds_the_static_volume_during_a_run():
    model = sea_model()
    subfaults = rupture_subfaults()
    static = fault_sea_surface(subfaults, model.grid, model.h, True, True)
    before = model.volume()
    rupture = KinematicRupture(model, subfaults)
    rupture.start(model)
    Simulation(model, rupture.end_time + 30.0, callbacks=[rupture]).run()
    added = float(np.sum(static * model.grid.cell_area()))
    assert model.volume() - before == pytest.approx(added, rel=1e-9)
    assert np.all(rupture.applied == 1.0)


def test_the_rupture_makes_an_fv2_grid_rederive_its_velocities():
    """fv2 keeps u = q / D between steps; a rupture raising the surface under moving water
    must have it re-derive them from the new depth (else a step runs with stale speeds)."""
    grid = Grid(nx=40, ny=40, x0=139.0, y0=41.0, dx=0.05, dy=0.05, crs="EPSG:4326",
                name="sea")
    model = ShallowWaterModel(grid, np.full(grid.shape, 2000.0), dtype=np.float64,
                              boundaries=Boundaries.all(Wall()), scheme="fv2", dt=1.0)
    rupture = KinematicRupture(model, rupture_subfaults())
    rupture.start(model)
    while np.abs(model.qx).max() == 0:  # until the first uplift moves water
        model.step()
        rupture(model)
    model.step()
    assert model.time < rupture.end_time  # the rupture still raises the surface
    stale = model._u.copy()
    rupture(model)
    model._refresh()
    fresh = model.qx / (model.eta + model.h)
    assert not np.allclose(stale, fresh, rtol=1e-9, atol=1e-12)  # the depth did change
    assert np.allclose(model._u, fresh, rtol=1e-12, atol=1e-15)


# -- scenario files -------------------------------------------------------------------------
def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def scenario(tmp_path, source, name="s.toml"):
    return write(tmp_path / name, f"""
        [scenario]
        name = "quake"
        duration = 60.0

        [source]
        {textwrap.dedent(source).strip()}
        """.replace("\n        ", "\n", 1))


CSV_HEADER = "longitude,latitude,depth_m,strike,dip,rake,slip_m,length_m,width_m"


def subfault_table(tmp_path, rows, header=CSV_HEADER, name="faults.csv"):
    path = tmp_path / name
    path.write_text("# a test fault\n" + header + "\n" + "".join(r + "\n" for r in rows))
    return path


def test_a_subfault_table_with_timing_columns(tmp_path):
    path = subfault_table(tmp_path, [
        "139.5,42.0,5000,10,30,90,4.0,40000,20000,0,10",
        "",
        "139.55,42.35,5000,10,30,90,6.0,40000,20000,16,10",
    ], header=CSV_HEADER + ",rupture_time_s,rise_time_s")
    subs = read_subfault_csv(path)
    assert len(subs) == 2 and subs[1].slip == 6.0 and subs[1].rupture_time == 16.0
    centred = read_subfault_csv(path, reference="centroid")
    assert centred[0].centroid == pytest.approx((139.5, 42.0, 5000.0), abs=1e-9)
    loaded = Scenario.load(scenario(tmp_path, """
        type = "subfaults"
        path = "faults.csv"
        kajiura = false
        """))
    source = loaded.source
    assert isinstance(source, FaultSource) and source.kind == "subfaults"
    assert source.kinematic and not source.kajiura and source.tanioka_satake
    assert source.fault.metadata["table"].endswith("faults.csv")
    assert source.fault.metadata["rupture"].startswith("kinematic: 2 subfaults")


@pytest.mark.parametrize("row, where, message", [
    ("139.5,42.0,5000,10,30,90,abc,40000,20000", "line 3, column 'slip_m'", "not a number"),
    ("139.5,42.0,5000,10,130,90,4,40000,20000", "line 3, column 'dip'",
     r"plausible range 0 \.\.\. 90 deg"),
    ("139.5,42.0,5000,10,30,90,4,0,20000", "line 3, column 'length_m'",
     r"plausible range > 0 \.\.\."),
    ("139.5,42.0,5000,10,30,90,4,40000", "line 3", "8 values for 9 columns"),
    ("139.5,42.0,nan,10,30,90,4,40000,20000", "line 3, column 'depth_m'", "NaN"),
])
def test_bad_subfault_rows_name_the_file_line_and_column(tmp_path, row, where, message):
    path = subfault_table(tmp_path, [row])
    with pytest.raises(InputError, match=message) as info:
        read_subfault_csv(path)
    assert str(path) in str(info.value) and f"field '{where}'" in str(info.value)


def test_bad_subfault_headers(tmp_path):
    path = subfault_table(tmp_path, [], header="longitude,latitude,depth_km")
    with pytest.raises(InputError, match=r"column 'depth_km'.*unknown column"):
        read_subfault_csv(path)
    path = subfault_table(tmp_path, ["1,2"], header="longitude,latitude")
    with pytest.raises(InputError, match="lacks the column"):
        read_subfault_csv(path)
    path = subfault_table(tmp_path, [])
    with pytest.raises(InputError, match="no subfaults"):
        read_subfault_csv(path)


FAULT = """
    type = "fault"
    longitude = 139.3
    latitude = 42.1
    depth_m = 5000.0
    strike = 160.0
    dip = 60.0
    rake = 105.0
    slip_m = 12.0
    length_m = 24500.0
    width_m = 25000.0
    """

ALERT = """
    type = "alert"
    magnitude = 7.8
    longitude = 139.18
    latitude = 42.78
    depth_m = 17000.0
    strike = 5.0
    dip = 30.0
    rake = 90.0
    """


def test_an_inline_fault_and_an_alert(tmp_path):
    fault = Scenario.load(scenario(tmp_path, FAULT)).source
    assert fault.kind == "fault" and len(fault.subfaults) == 1 and not fault.kinematic
    assert fault.subfaults[0].slip == 12.0 and fault.fault.metadata["rupture"] == "instantaneous"
    alert = Scenario.load(scenario(tmp_path, ALERT)).source
    assert alert.kind == "alert" and alert.fault.metadata["law"] == "strasser2010_interface"
    named = Scenario.load(scenario(tmp_path, ALERT + 'law = "wells_coppersmith1994_all"\n'))
    assert named.source.fault.metadata["law"] == "wells_coppersmith1994_all"
    kinematic = Scenario.load(scenario(tmp_path, ALERT + "rupture_velocity = 2500.0\n"
                                                          "rise_time = 8.0\n")).source
    assert kinematic.kinematic and len(kinematic.subfaults) > 1
    s = kinematic.subfaults
    assert min(p.rupture_time for p in s) < 5.0 < max(p.rupture_time for p in s) < 40.0
    assert all(p.rise_time == 8.0 for p in s)
    total = sum(p.moment(3e10) for p in s)
    assert total == pytest.approx(alert.fault.moment(3e10), rel=1e-12)


@pytest.mark.parametrize("source, field, message", [
    (FAULT.replace("dip = 60.0", "dip = 120.0"), "source.dip",
     r"plausible range 0 \.\.\. 90 deg"),
    (FAULT.replace("slip_m", "slip"), "source.slip", "unknown key"),
    (FAULT.replace("width_m = 25000.0", ""), "source.width_m", "missing required key"),
    (FAULT + 'reference = "middle"\n', "source.reference", "is not one of"),
    (FAULT + "rupture_velocity = -1.0\n", "source.rupture_velocity",
     r"plausible range 100 \.\.\. 6000 m/s"),
    (ALERT + 'law = "blaser2010"\n', "source.law", "is not one of"),
    (ALERT + 'tanioka_satake = "yes"\n', "source.tanioka_satake", "true or false"),
    (ALERT.replace("magnitude = 7.8", "magnitude = 11.0"), "source.magnitude",
     r"plausible range 5 \.\.\. 9\.8 Mw"),
    (ALERT.replace("dip = 30.0", "dip = 0.0"), "source.dip", "positive"),
    (ALERT + "slip_m = 3.0\n", "source.slip_m", "unknown key"),
    ('type = "subfaults"\npath = "faults.csv"\nrupture_velocity = 2000.0\n',
     "source.hypocentre", "needed with rupture_velocity"),
    ('type = "subfaults"\npath = "faults.csv"\nhypocentre = [139.0, 42.0]\n'
     "rupture_velocity = 2000.0\n", "source.hypocentre", "expected 3 numbers"),
    ('type = "subfaults"\npath = "missing.csv"\n', "source.path", "file not found"),
])
def test_fault_source_errors_name_the_file_and_field(tmp_path, source, field, message):
    subfault_table(tmp_path, ["139.5,42.0,5000,10,30,90,4.0,40000,20000"])
    path = scenario(tmp_path, source)
    with pytest.raises(InputError, match=message) as info:
        Scenario.load(path)
    assert str(path) in str(info.value) and f"field '{field}'" in str(info.value)


def test_a_bad_row_in_the_table_of_a_scenario_names_the_table(tmp_path):
    table = subfault_table(tmp_path, ["139.5,42.0,5000,10,30,90,4.0,40000,-2"])
    with pytest.raises(InputError) as info:
        Scenario.load(scenario(tmp_path, 'type = "subfaults"\npath = "faults.csv"\n'))
    assert str(table) in str(info.value) and "line 3, column 'width_m'" in str(info.value)


def test_a_fault_needs_a_georeferenced_region(tmp_path):
    xyz = "\n".join(f"{x} {y} -10" for y in range(0, 100, 10) for x in range(0, 100, 10))
    (tmp_path / "lab.xyz").write_text("x y z\n" + xyz + "\n")
    region = Region.load(write(tmp_path / "r.toml", """
        [region]
        name = "lab"
        crs = "local"
        [[dem]]
        path = "lab.xyz"
        [[grid]]
        name = "tank"
        extent = [0.0, 90.0, 0.0, 90.0]
        spacing = 10.0
        """))
    path = scenario(tmp_path, FAULT)
    with pytest.raises(InputError, match="georeferenced") as info:
        build_model(region, Scenario.load(path))
    assert str(path) in str(info.value) and "source.type" in str(info.value)


# -- a short run from an alert ----------------------------------------------------------------
@pytest.fixture
def coast(tmp_path):
    """Sea 2,000 m deep in the west shoaling onto land east of 140.6 E, around 42 N."""
    lon = np.arange(138.5, 141.0, 0.02) + 0.01
    lat = np.arange(43.0, 41.0, -0.02) - 0.01
    elevation = np.tile(np.clip(-2000.0 + 2100.0 * (lon - 138.5) / 2.2, -2000.0, 100.0),
                        (lat.size, 1))
    with rasterio.open(tmp_path / "dem.tif", "w", driver="GTiff", width=lon.size,
                       height=lat.size, count=1, dtype="float32", crs="EPSG:4326",
                       transform=Affine(0.02, 0, 138.5, 0, -0.02, 43.0)) as dst:
        dst.write(elevation.astype("float32"), 1)
    write(tmp_path / "r.toml", """
        [region]
        name = "coast"
        crs = "EPSG:4326"
        [[dem]]
        path = "dem.tif"
        [[grid]]
        name = "sea"
        extent = [138.6, 140.9, 41.1, 42.9]
        spacing = 0.03
        manning = 0.025
        [[gauge]]
        name = "above"
        x = 139.75
        y = 42.0
        """)
    return tmp_path


@pytest.mark.parametrize("extra", ["", "rupture_velocity = 2500.0\nrise_time = 5.0\n"])
def test_a_short_run_from_an_alert(coast, extra):
    region = Region.load(coast / "r.toml")
    alert = ALERT.replace("139.18", "139.6").replace("42.78", "42.0").replace(
        "17000.0", "20000.0").replace("7.8", "7.6")
    scen = Scenario.load(scenario(coast, alert + extra))
    result = run(region, scen)
    ds = result.fields["sea"]
    assert ds.attrs["source_type"] == "alert"
    assert ds.attrs["fault_law"] == "strasser2010_interface"
    assert float(ds.attrs["fault_slip_m"]) > 0.5
    peak = float(ds.max_eta.max())
    assert 0.3 < peak < 3.0  # a Mw 7.6 thrust: about a metre over the fault
    # the surface peaks over the fault's shallow part: east of its top edge (west of the
    # epicentre at the centroid, as the fault dips east)
    top = min(s.longitude for s in scen.source.subfaults)
    where = ds.max_eta.where(ds.max_eta == ds.max_eta.max(), drop=True)
    assert top - 0.05 <= float(where.lon[0]) < 139.6
    eta = result.recorder.to_dataset()["eta"].values
    assert np.nanmax(np.abs(eta)) > 0.1
    if extra:
        assert ds.attrs["fault_rupture"].startswith("kinematic")
        assert float(ds.attrs["fault_rise_time_s"]) == 5.0
    else:
        assert ds.attrs["fault_rupture"] == "instantaneous"


def test_provenance_names_the_source_type():
    region = Region.load(ROOT / "grids" / "conical_island" / "region.toml")
    lab = Scenario.load(ROOT / "scenarios" / "conical_island_case_a.toml")
    assert _provenance(region, lab)["source_type"] == "incident_wave"
    hno = Scenario.load(ROOT / "scenarios" / "okushiri1993_hno.toml")
    assert _provenance(region, hno)["source_type"] == "displacement"
    fault = Scenario.load(ROOT / "scenarios" / "okushiri1993_fault.toml")
    attrs = _provenance(region, fault)
    assert attrs["source_type"] == "alert"
    assert attrs["fault_law"] == "wells_coppersmith1994_reverse"
    assert all(isinstance(v, str) for k, v in attrs.items() if k.startswith("fault_"))


def test_a_kinematic_scenario_needs_a_callbacks_list(coast):
    region = Region.load(coast / "r.toml")
    alert = ALERT.replace("139.18", "139.6").replace("42.78", "42.0")
    scen = Scenario.load(scenario(coast, alert + "rise_time = 20.0\n"))
    with pytest.raises(ValueError, match="callbacks"):
        build_model(region, scen)
    callbacks = []
    model = build_model(region, scen, callbacks=callbacks)
    assert isinstance(callbacks[0], KinematicRupture)
    assert np.all(model.eta[model.initially_wet] == 0.0)  # nothing has slipped at t = 0


def test_the_shipped_okushiri_fault_scenario_on_the_nest():
    """The alert source of okushiri1993_fault.toml on all seven grids: about 2 m of uplift
    north-west of Okushiri, a slight subsidence at Aonae and Monai."""
    nest = build_model(Region.load(ROOT / "grids" / "okushiri1993" / "region.toml"),
                       Scenario.load(ROOT / "scenarios" / "okushiri1993_fault.toml"))
    outer = nest.by_name["OK24"]
    own = outer.initially_wet & ~nest.covered(outer)  # (covered cells hold stand-ins)
    assert 1.5 < float(outer.eta[own].max()) < 2.5
    for name, lon, lat in (("Aonae_10m", 139.4605, 42.05), ("Monai_10m", 139.4170, 42.098)):
        m = nest.by_name[name]
        row, col = (int(v) for v in np.round(m.grid.index_of(lon, lat)))
        assert -0.3 < float(m.eta[row, col]) < 0.0, name
