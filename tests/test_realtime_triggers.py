"""Triggers: the DART detector (published weights, real 2011 record, quiet tide) and the
de-tided anomaly threshold."""

from pathlib import Path

import numpy as np
import pytest

from tsunami.realtime.formats import TOHOKU2011_EPOCH, TOHOKU2011_ORIGIN_NS, read_file
from tsunami.realtime.qc import clean
from tsunami.realtime.records import iso, to_ns
from tsunami.realtime.stations import StationCatalogue
from tsunami.realtime.store import RecordStore
from tsunami.realtime.triggers import (
    MOFJELD_WEIGHTS,
    AnomalyTrigger,
    DartConfig,
    DartDetector,
    dart_residuals,
    extrapolation_weights,
)

ROOT = Path(__file__).resolve().parents[1]
GAUGES = ROOT / "scenarios" / "tohoku2011" / "gauges"
CATALOGUE = StationCatalogue.load(ROOT / "scenarios" / "tohoku2011" / "stations.toml")
ORIGIN = TOHOKU2011_ORIGIN_NS
MINUTE = 60 * 10**9


def test_weights_are_mofjelds_cubic_extrapolation():
    w = extrapolation_weights(4, (15 + 300) / 3600)
    assert w == pytest.approx(MOFJELD_WEIGHTS, abs=1e-12)
    assert extrapolation_weights(1, 0.1) == pytest.approx([1.0])
    assert extrapolation_weights(2, 0.5) == pytest.approx([1.5, -0.5])


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    store = RecordStore(tmp_path_factory.mktemp("trig") / "r.db")
    out = {}
    for sid in ("21418", "802", "806", "P02"):
        records, problems = read_file(GAUGES / f"{sid}.dat", CATALOGUE[sid], "two_column",
                                      TOHOKU2011_EPOCH)
        store.insert(records, problems)
        out[sid] = clean(store.records(sid), CATALOGUE[sid], ORIGIN)
    store.close()
    return out


def _stream(detector, s, chunk=4, start_ns=None):
    """Feed a clean series to the detector a few samples at a time, as they arrive."""
    keep = np.ones(len(s.time_ns), bool) if start_ns is None else s.time_ns >= start_ns
    t, eta, flags = s.time_ns[keep], s.eta[keep], s.flags[keep]
    events = []
    for a in range(0, len(t), chunk):
        events += detector.update(s.station, t[a:a + chunk], eta[a:a + chunk],
                                  flags[a:a + chunk])
    return events


def test_dart_21418_fires_on_the_2011_tsunami(series):
    events = _stream(DartDetector(), series["21418"])
    first = events[0]
    # 06:16:00 UTC, 29.6 min after the origin, on the leading rise (+0.34 m); the
    # seismic minutes before are flagged by QC and not tested
    assert iso(first.time_ns) == "2011-03-11T06:16:00Z"
    assert first.value_m == pytest.approx(0.343, abs=0.01)
    assert len(events) == 1  # event mode (3 h) covers the rest of the record


def _tide(t_s):
    """Deep-ocean tide: M2 0.45 m, S2 0.20 m, K1 0.25 m, O1 0.18 m."""
    hours = t_s / 3600
    return (0.45 * np.cos(2 * np.pi * 0.0805114 * hours + 0.3)
            + 0.20 * np.cos(2 * np.pi * 0.0833333 * hours + 1.1)
            + 0.25 * np.cos(2 * np.pi * 0.0417807 * hours + 2.0)
            + 0.18 * np.cos(2 * np.pi * 0.0387307 * hours - 0.7))


def test_dart_quiet_three_days_of_tide_do_not_fire_but_a_tsunami_does():
    """Three days of 15-s samples of tide and 3 mm noise: the 4-tap predictor stays
    within 20 mm and never fires, where a persistence predictor (one tap) is off by more
    than the 30 mm threshold; a 5-cm wave of 20-min period then fires on its second
    sample above 30 mm
    of its arrival."""
    rng = np.random.default_rng(3)
    epoch = to_ns(TOHOKU2011_EPOCH)
    t = np.arange(0, 3 * 86400 + 3600, 15.0)
    arrival = 3 * 86400 + 600.0
    h = 5000 + _tide(t) + rng.normal(0, 0.003, len(t))
    h += np.where(t >= arrival, 0.05 * np.sin(2 * np.pi * (t - arrival) / 1200), 0.0)
    time_ns = epoch + (t * 1e9).astype(np.int64)
    quiet = t < arrival
    detector = DartDetector()
    assert detector.update("Q", time_ns[quiet], h[quiet]) == []
    for taps, low, high in ((4, 0.0, 0.02), (1, 0.03, 0.05)):
        residual, used = dart_residuals(time_ns[quiet], h[quiet], DartConfig(taps=taps))
        assert low < np.nanmax(np.abs(residual[used == taps])) < high
    [event] = detector.update("Q", time_ns[~quiet], h[~quiet])
    delay = (event.time_ns - epoch) / 1e9 - arrival
    assert 120 < delay <= 180  # the wave passes 30 mm 123 s after its arrival


def test_dart_on_raw_samples_behaves_like_the_buoy(series):
    """With no QC flags a single out-of-bound sample never triggers alone: the 21418
    coda's one-sample drops (flagged spikes) are tested here as raw samples."""
    s = series["21418"]
    quiet = s.time_ns >= ORIGIN + 100 * MINUTE
    raw_with_spike = s.eta[quiet].copy()
    raw_with_spike[40] -= 1.0  # a single 1 m drop, 40 min into the stretch
    detector = DartDetector(DartConfig(threshold_m=0.3))
    assert detector.update("21418", s.time_ns[quiet], raw_with_spike, None) == []


def test_anomaly_trigger_counts_stations(series):
    one = AnomalyTrigger(threshold_m=0.5, min_stations=1, after_ns=ORIGIN)
    [event] = one.update(series)
    assert event.stations == ("P02",)
    assert ORIGIN < event.time_ns < ORIGIN + 10 * MINUTE
    three = AnomalyTrigger(threshold_m=0.5, min_stations=3, after_ns=ORIGIN)
    [event] = three.update(series)
    assert set(event.stations) == {"P02", "806", "802"}
    assert event.time_ns > ORIGIN + 10 * MINUTE
    assert three.update(series) == []  # fires once
    never = AnomalyTrigger(threshold_m=10.0, min_stations=1)
    assert never.update(series) == []


def test_streaming_store_qc_and_detector_as_the_service_runs_them(tmp_path):
    """Records arrive a minute at a time, are committed, QC runs on the growing window
    and the detector sees each new clean sample: same trigger as on the whole record."""
    from tsunami.realtime.feeds import paced

    records, _ = read_file(GAUGES / "21418.dat", CATALOGUE["21418"], "two_column",
                           TOHOKU2011_EPOCH)
    records.sort(key=lambda r: r.time_ns)
    detector = DartDetector()
    events = []
    with RecordStore(tmp_path / "r.db") as store:
        for _, batch in paced(records, speed=60.0, tick_s=1.0):
            if not store.insert(batch).inserted:
                continue
            s = clean(store.records("21418"), CATALOGUE["21418"], ORIGIN)
            events += detector.update("21418", s.time_ns, s.eta, s.flags)
    assert [iso(e.time_ns) for e in events] == ["2011-03-11T06:16:00Z"]
