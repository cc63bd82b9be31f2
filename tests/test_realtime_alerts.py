"""Earthquake alerts: JSON, USGS GeoJSON, QuakeML and JMA bulletins (hardened XML)."""

from pathlib import Path

import pytest

from tsunami.errors import InputError
from tsunami.realtime.alerts import parse_alert, read_alert
from tsunami.realtime.records import iso
from tsunami.source.scaling import fault_from_alert

ALERTS = Path(__file__).resolve().parents[1] / "scenarios" / "alerts"
JMA = (ALERTS / "tohoku2011_jma_vxse53.xml").read_text(encoding="utf-8")


def test_jma_bulletin_origin_in_jst_coordinates_and_magnitude():
    alert = read_alert(ALERTS / "tohoku2011_jma_vxse53.xml")
    assert alert.actionable and alert.format == "jma" and alert.status == "normal"
    assert iso(alert.origin_time_ns) == "2011-03-11T05:46:00Z"  # 14:46 JST
    assert (alert.latitude, alert.longitude, alert.depth_m) == (38.0, 142.9, 10000.0)
    assert (alert.magnitude, alert.magnitude_type) == (7.9, "Mj")
    assert alert.event_id == "20110311144618" and alert.datum == "日本測地系"
    assert not alert.has_mechanism


@pytest.mark.parametrize("status, reason", [("訓練", "drill"), ("試験", "test")])
def test_jma_drills_and_tests_are_ignored(status, reason):
    text = JMA.replace("<Status>通常</Status>", f"<Status>{status}</Status>")
    alert = parse_alert(text.encode())
    assert not alert.actionable and reason in alert.reason
    assert not read_alert(ALERTS / "drill_jma_vxse53.xml").actionable


def test_jma_cancelled_unknown_depth_saturated_and_dms_coordinates():
    cancelled = parse_alert(JMA.replace("<InfoType>発表</InfoType>",
                                        "<InfoType>取消</InfoType>").encode())
    assert not cancelled.actionable and "cancelled" in cancelled.reason
    no_depth = parse_alert(JMA.replace("+38.0+142.9-10000/", "+38.0+142.9/").encode())
    assert no_depth.actionable and no_depth.depth_m is None
    assert no_depth.fault_arguments(20e3, (193, 14, 81))["depth"] == 20e3
    dms = parse_alert(JMA.replace("+38.0+142.9-10000/", "+3806.2+14251.6-24000/").encode())
    assert dms.latitude == pytest.approx(38 + 6.2 / 60)
    assert dms.longitude == pytest.approx(142 + 51.6 / 60) and dms.depth_m == 24000
    great = parse_alert(JMA.replace(
        '<jmx_eb:Magnitude type="Mj" description="Ｍ７．９">7.9</jmx_eb:Magnitude>',
        '<jmx_eb:Magnitude type="Mj" condition="M8を超える巨大地震" '
        'description="Ｍ８を超える巨大地震">NaN</jmx_eb:Magnitude>').encode())
    assert great.actionable and great.magnitude == 8.0 and great.magnitude_lower_bound
    unknown = parse_alert(JMA.replace(
        '<jmx_eb:Coordinate description="北緯３８．０度　東経１４２．９度　深さ　１０ｋｍ" '
        'datum="日本測地系">+38.0+142.9-10000/</jmx_eb:Coordinate>',
        '<jmx_eb:Coordinate description="震源要素不明"></jmx_eb:Coordinate>').encode())
    assert not unknown.actionable and "震源要素不明" in unknown.reason


def test_quakeml_feeds_the_alert_fault():
    alert = read_alert(ALERTS / "okushiri1993.quakeml")
    assert alert.actionable and alert.format == "quakeml"
    assert (alert.strike, alert.dip, alert.rake) == (5.0, 30.0, 90.0)
    assert (alert.magnitude_type, alert.depth_m) == ("Mw", 17000.0)
    fault = fault_from_alert(**alert.fault_arguments(20e3, (0.0, 45.0, 90.0)),
                             law="wells_coppersmith1994_reverse")  # as the demo scenario
    assert fault.metadata["magnitude"] == 7.8
    assert fault.metadata["length_m"] == pytest.approx(127e3, rel=0.02)  # README: 127 km


def test_json_and_usgs_geojson():
    jma_json = read_alert(ALERTS / "tohoku2011.json")
    assert jma_json.actionable and jma_json.depth_m == 10000.0
    assert iso(jma_json.origin_time_ns) == "2011-03-11T05:46:18Z"
    usgs = read_alert(ALERTS / "tohoku2011_usgs.geojson")
    assert (usgs.magnitude, usgs.magnitude_type, usgs.depth_m) == (9.1, "mww", 29000.0)
    assert iso(usgs.origin_time_ns) == "2011-03-11T05:46:24.120000Z"
    drill = parse_alert(b'{"origin_time": "2011-03-11T05:46:18Z", "longitude": 142.9, '
                        b'"latitude": 38, "depth_km": 10, "magnitude": 7.9, '
                        b'"status": "drill"}')
    assert not drill.actionable


@pytest.mark.parametrize("data, field", [
    (b'{"origin_time": "2011-03-11T05:46:18", "longitude": 142.9, "latitude": 38, '
     b'"magnitude": 7.9}', "origin_time"),  # no time zone
    (b'{"origin_time": "2011-03-11T05:46:18Z", "longitude": 142.9, "latitude": 98, '
     b'"magnitude": 7.9}', "latitude"),
    (b'{"origin_time": "2011-03-11T05:46:18Z", "longitude": 142.9, "latitude": 38, '
     b'"magnitude": "big"}', "magnitude"),
    (JMA.replace("+38.0+142.9-10000/", "38N 142E").encode(), "Hypocenter/Area/Coordinate"),
    (JMA.replace("<Status>通常</Status>", "<Status>maybe</Status>").encode(),
     "Control/Status"),
])
def test_malformed_alerts_name_the_field(data, field):
    with pytest.raises(InputError) as err:
        parse_alert(data, "feed.alert")
    assert "feed.alert" in str(err.value) and f"field '{field}'" in str(err.value)


def test_hostile_xml_is_refused():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            b'<Report xmlns="http://xml.kishou.go.jp/jmaxml1/">&lol2;</Report>')
    with pytest.raises(InputError, match="unsafe XML"):
        parse_alert(bomb)
    external = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                b'<Report xmlns="http://xml.kishou.go.jp/jmaxml1/">&x;</Report>')
    with pytest.raises(InputError, match="unsafe XML"):
        parse_alert(external)
    with pytest.raises(InputError, match="malformed XML"):
        parse_alert(b"<Report><unclosed></Report>")
