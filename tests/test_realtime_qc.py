"""Quality control on the real 2011 records and on synthetic series with known faults."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tsunami.realtime.formats import TOHOKU2011_EPOCH, TOHOKU2011_ORIGIN_NS, read_file
from tsunami.realtime.qc import QCConfig, clean, clock_offset, normal_gravity, tide_model, to_metres
from tsunami.realtime.records import BAD, Flag, Record, iso, to_ns
from tsunami.realtime.stations import Station, StationCatalogue
from tsunami.realtime.store import RecordStore

ROOT = Path(__file__).resolve().parents[1]
GAUGES = ROOT / "scenarios" / "tohoku2011" / "gauges"
CATALOGUE = StationCatalogue.load(ROOT / "scenarios" / "tohoku2011" / "stations.toml")
ORIGIN = TOHOKU2011_ORIGIN_NS
MINUTE = 60 * 10**9


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory):
    store = RecordStore(tmp_path_factory.mktemp("qc") / "r.db")
    out = {}
    for sid in ("21418", "802", "806", "KPG1", "MPG1", "P02"):
        records, problems = read_file(GAUGES / f"{sid}.dat", CATALOGUE[sid], "two_column",
                                      TOHOKU2011_EPOCH)
        store.insert(records, problems)
        out[sid] = clean(store.records(sid), CATALOGUE[sid], ORIGIN,
                         conflicts=len(store.conflicts(sid)))
    store.close()
    return out


def _peak(series):
    good = series.good()
    i = np.argmax(np.where(good, series.eta, -np.inf))
    return series.eta[i], (series.time_ns[i] - ORIGIN) / MINUTE


def test_dart_2011_event_mode_duplicates_seismic_and_spikes(cleaned):
    s = cleaned["21418"]
    assert s.step_s == 60.0 and np.all(np.diff(s.time_ns) == MINUTE)
    # four repeated stamps with other values: refused by the store, counted in the log
    assert any(n.what == "DUPLICATE" and n.count == 4 for n in s.notes)
    # the 15-s event-mode stretch lies within the 10 min masked after the origin
    seismic = s.input_time_ns[(s.input_flags & Flag.SEISMIC) > 0]
    assert len(seismic) == 22 and seismic.max() < ORIGIN + 10 * MINUTE
    # the four single-sample drops of 0.2-1.1 m in the coda are spikes, and only they
    spikes = s.input_time_ns[(s.input_flags & Flag.SPIKE) > 0]
    assert [iso(t)[11:16] for t in spikes] == ["07:33", "07:49", "08:04", "08:37"]
    # the tsunami: 1.9 m above the pre-event level 32-33 min after the origin
    peak, minute = _peak(s)
    assert 1.8 < peak < 2.0 and 32 <= minute <= 33.5


def test_gps_buoy_802_peak_matches_the_published_6_7_m(cleaned):
    """Ozaki (2011, EPS 63:827): the Kamaishi buoy (802) showed 6.7 m at 26 min."""
    peak, minute = _peak(cleaned["802"])
    assert 6.4 < peak < 6.8 and 24 < minute < 27
    gaps = cleaned["806"]
    assert gaps.counts["MISSING"] == 38
    assert ((gaps.flags & Flag.GAP) > 0).sum() > 0  # 3-min dropout stays a gap


def test_bottom_pressure_seismic_window_and_tsunami(cleaned):
    kpg = cleaned["KPG1"]
    shaking = kpg.input_time_ns[(kpg.input_flags & Flag.SEISMIC) > 0]
    assert 300 < len(shaking) < 600
    assert ORIGIN + 2 * MINUTE < shaking.min() and shaking.max() < ORIGIN + 12 * MINUTE
    assert kpg.counts.get("SPIKE", 0) == 0  # seismic crests are not spikes
    peak, minute = _peak(kpg)
    assert 0.5 < peak < 0.7 and 25 < minute < 32  # the 0.6 m wave off Kushiro
    # clean output is smooth: no seismic energy left outside flagged samples
    good = kpg.good() & (kpg.time_ns > ORIGIN + 15 * MINUTE)
    assert np.abs(np.diff(kpg.eta[good])).max() < 0.05
    peak, minute = _peak(cleaned["MPG1"])
    assert 0.2 < peak < 0.3 and 100 < minute < 115  # off Muroto, 900 km away
    p02 = cleaned["P02"]
    assert p02.input_time_ns[(p02.input_flags & Flag.SEISMIC) > 0].min() < ORIGIN + MINUTE
    peak, minute = _peak(p02)
    assert 4.0 < peak < 6.0 and 12 < minute < 16
    assert p02.coseismic_offset_m is not None and p02.coseismic_offset_m > 0.5
    after = p02.time_ns >= ORIGIN
    assert ((p02.flags[after] & Flag.COSEISMIC) > 0).all()
    assert not (p02.flags[~after] & Flag.COSEISMIC).any()
    assert (p02.flags[-4:] & Flag.EDGE).all()  # the last minute is provisional


def test_pressure_units_to_height():
    assert normal_gravity(0.0) == pytest.approx(9.7803, abs=1e-4)
    assert normal_gravity(90.0) == pytest.approx(9.8322, abs=1e-4)
    h = to_metres(np.array([1.0, 100.0, 1.0]), np.array(["dbar", "hPa", "m"], object),
                  38.0, 1030.0)
    g = normal_gravity(38.0)
    assert h == pytest.approx([1e4 / (1030 * g), 1e4 / (1030 * g), 1.0])
    assert h[0] == pytest.approx(0.9905, abs=2e-4)


def _synthetic(days, step_s=60.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(0, days * 86400, step_s)
    hours = t / 3600
    tide = (0.45 * np.cos(2 * np.pi * 0.0805114007 * hours + 0.3)
            + 0.20 * np.cos(2 * np.pi * 0.0833333333 * hours + 1.1)
            + 0.25 * np.cos(2 * np.pi * 0.0417807462 * hours + 2.0)
            + 0.18 * np.cos(2 * np.pi * 0.0387306544 * hours - 0.7)
            + 0.002 * hours / 24)  # 2 mm/day drift
    return t, tide + rng.normal(0, 0.003, len(t))


def test_harmonic_detiding_by_rayleigh_criterion():
    t_s, y = _synthetic(20)
    time_ns = to_ns(TOHOKU2011_EPOCH) + (t_s * 1e9).astype(np.int64)
    origin = int(time_ns[-1] - 3 * 3600 * 10**9)
    good = np.ones(len(y), bool)
    method, tide = tide_model(time_ns, y, good, origin)
    assert method.startswith("harmonic") and {"M2", "S2", "K1", "O1"} <= set(
        method.split()[1].split("+"))
    after = time_ns >= origin
    assert np.sqrt(np.mean((y - tide)[after] ** 2)) < 0.006  # noise is 3 mm
    # shorter windows resolve fewer constituents, then fall back
    for hours, expected in ((30, "harmonic M2+K1+M4"), (13, "harmonic M2+M4"), (3, "linear"),
                            (0.5, "mean")):
        keep = time_ns >= origin - int(hours * 3600e9)
        method, _ = tide_model(time_ns[keep], y[keep], good[keep], origin)
        assert method == expected


def _station(sampling_s=5.0, kind="sea_surface_height"):
    return Station("S1", 142.0, 38.0, 1000.0, kind, sampling_s=sampling_s)


def _records(time_s, values, station="S1", kind="sea_surface_height", unit="m"):
    base = to_ns(TOHOKU2011_EPOCH)
    return [Record(station, base + round(t * 1e9), float(v), unit, kind, "synthetic")
            for t, v in zip(time_s, values, strict=True)]


def test_spikes_steps_duplicates_order_and_clock(tmp_path):
    rng = np.random.default_rng(1)
    t = np.arange(0, 7200, 5.0) + 1.5  # every stamp 1.5 s off the 5-s lattice
    v = 0.3 * np.sin(2 * np.pi * t / 1800) + rng.normal(0, 0.005, len(t))
    v[[100, 700]] += [0.8, -0.5]  # spikes
    v[1000:] += 0.4  # an instrument step at 5000 s
    records = _records(t, v)
    with RecordStore(tmp_path / "r.db") as store:
        store.insert(records[:50] + records[60:])
        store.insert(records[50:60])  # late: out of order
        store.insert([replace(records[5], source="mirror")])  # duplicate
        s = clean(store.records("S1"), _station(), None)
    assert s.clock_offset_s == pytest.approx(1.5)
    assert (s.time_ns % (5 * 10**9) == 0).all()
    assert s.counts["SPIKE"] == 2 and s.counts["STEP"] == 1
    # the 10 late samples, and the mirrored copy of sample 5 that came last
    assert s.counts["OUT_OF_ORDER"] == 11 and s.counts["DUPLICATE"] == 1
    # the step is removed: what follows continues the signal (up to the linear trend
    # de-tiding took out of this 2-hour record)
    seconds = (s.time_ns - to_ns(TOHOKU2011_EPOCH)) / 1e9
    error = s.eta - 0.3 * np.sin(2 * np.pi * seconds / 1800)
    good = s.good()
    trend = np.polyval(np.polyfit(seconds[good], error[good], 1), seconds)
    assert s.tide_method == "linear"
    assert np.abs(error - trend)[good].max() < 0.02
    # flags never delete: every input sample is still there
    assert len(s.input_flags) == len(records) + 1


def test_pressure_record_with_nan_inf_and_garbage_values_never_raises():
    station = _station(1.0, "bottom_pressure")
    t = np.arange(0, 1800, 1.0)
    p = 1.0e7 + 1030 * normal_gravity(38.0) * 0.1 * np.sin(2 * np.pi * t / 600)
    p[10:20] = np.nan
    p[500] = 5e9  # absurd
    records = _records(t, p, kind="bottom_pressure", unit="Pa")
    import tsunami.realtime.store as store_mod
    data = store_mod.RecordArray(
        "S1", np.arange(len(t)), np.array([r.time_ns for r in records]),
        np.array([r.value for r in records]), np.zeros(len(t), np.int64),
        np.array(["Pa"] * len(t), object), np.array(["bottom_pressure"] * len(t), object),
        np.array(["x"] * len(t), object))
    s = clean(data, station, None, QCConfig())
    assert s.counts["MISSING"] == 10 and s.counts["RANGE"] == 1
    good = s.good()
    assert np.ptp(s.eta[good]) == pytest.approx(0.2, abs=0.02)  # 0.1 m amplitude back
    assert not (s.flags[good] & int(BAD)).any()


def test_clock_offset_by_cross_correlation():
    t = np.arange(0, 3600, 15.0)
    wave = np.exp(-(((t - 1500) / 200) ** 2))
    ref_ns = (t * 1e9).astype(np.int64)
    late_ns = ref_ns + 45 * 10**9  # this gauge's clock runs 45 s late... stamps too big
    assert clock_offset(late_ns, wave, ref_ns, wave, max_lag_s=120, step_s=15) == 45.0
