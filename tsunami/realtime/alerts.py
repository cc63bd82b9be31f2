"""Earthquake alerts: hypocentre, origin time, magnitude (and mechanism) from a simple
JSON file, a QuakeML file or a JMA earthquake bulletin (気象庁防災情報XML).

:func:`read_alert` returns an :class:`EarthquakeAlert` whose fields match
:func:`tsunami.source.scaling.fault_from_alert` (``fault_arguments``). XML is parsed with
``defusedxml`` (no entity expansion, no external entities or DTDs: alerts come from
outside). Malformed alerts raise :class:`~tsunami.errors.InputError` naming the file and
field. Drills and tests (JMA ``Control/Status`` 訓練 / 試験, QuakeML events of type
"not existing"), cancellations (JMA ``InfoType`` 取消) and bulletins without a
hypocentre or magnitude are returned with ``actionable = False`` and a ``reason``.

Formats:

- **JSON**: ``{"event_id", "origin_time" (ISO 8601 with zone), "longitude", "latitude",
  "depth_km" (or "depth_m"), "magnitude", "magnitude_type", optional "mechanism":
  {"strike", "dip", "rake"}, "agency", "status" ("normal", "drill", "test")}``; a USGS
  GeoJSON Feature (``properties.time`` in ms, ``geometry.coordinates`` = [lon, lat,
  depth km], ``mag``, ``magType``) is read too.
- **QuakeML** 1.2 (BED): the preferred origin, magnitude and focal mechanism (first
  nodal plane) of the first event; depth in m.
- **JMA** bulletins with a ``Body/Earthquake`` element (VXSE52/53 hypocentre
  information, VTSE41/51 tsunami warnings and information): ``OriginTime`` (JST offsets
  converted to UTC), the hypocentre in ISO 6709 (``+38.0+142.9-10000/``: degrees, or
  DDMM / DDMMSS forms; height in m, negative down; no depth when unknown, empty when the
  hypocentre is unknown), ``jmx_eb:Magnitude`` with its type (Mj, Mw, ...). A magnitude
  ``NaN`` with condition "M8を超える巨大地震" (JMA's wording when a great earthquake's
  magnitude saturates) gives magnitude 8.0 with ``magnitude_lower_bound``. The datum is
  recorded, not transformed: the Tokyo-datum shift (< 0.5 km) is far below the 0.1 degree
  (about 10 km) precision of bulletin coordinates.

Magnitude types: only Mw is a moment magnitude; JMA's Mj and body/surface-wave
magnitudes saturate for great earthquakes (Mj 7.9 was the first 2011 estimate of an
Mw 9.0), which is why the consumer keeps ``magnitude_type`` and the lower-bound flag.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from tsunami.errors import InputError
from tsunami.realtime.records import iso, parse_iso, to_datetime, to_ns

JMA_STATUS = {"通常": "normal", "訓練": "drill", "試験": "test"}
JMA_INFO_TYPE = {"発表": "issued", "訂正": "corrected", "遅延": "delayed", "取消": "cancelled"}
_QML = "{http://quakeml.org/xmlns/bed/1.2}"
_ISO6709 = re.compile(r"^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)?/$")
MAX_BYTES = 2_000_000  # bulletins are a few kB; refuse anything absurd


@dataclass(frozen=True)
class EarthquakeAlert:
    """An earthquake as an alert describes it.

    ``origin_time_ns``: ns since the epoch, UTC; ``longitude``, ``latitude`` (deg),
    ``depth_m`` (m below sea level; None when the alert gives none); ``magnitude`` and its
    ``magnitude_type``; ``strike``, ``dip``, ``rake`` (deg) when a mechanism is given.
    ``status``: normal, drill or test; ``info_type``: issued, corrected, cancelled, ...;
    ``actionable`` False (with ``reason``) for drills, tests, cancellations and alerts
    that lack what a forecast needs.
    """

    event_id: str
    origin_time_ns: int
    longitude: float
    latitude: float
    depth_m: float | None
    magnitude: float
    magnitude_type: str
    strike: float | None = None
    dip: float | None = None
    rake: float | None = None
    magnitude_lower_bound: bool = False
    agency: str = ""
    status: str = "normal"
    info_type: str = "issued"
    issued_ns: int | None = None
    datum: str = ""
    format: str = ""
    path: str = ""
    actionable: bool = True
    reason: str = ""

    @property
    def origin_time(self) -> datetime:
        return to_datetime(self.origin_time_ns)

    @property
    def has_mechanism(self) -> bool:
        return None not in (self.strike, self.dip, self.rake)

    def fault_arguments(self, default_depth_m: float, default_mechanism: tuple[float, float,
                        float]) -> dict[str, float]:
        """Keyword arguments of :func:`tsunami.source.scaling.fault_from_alert`: the
        alert's values, or the defaults (e.g. the region's typical interface geometry)
        where it gives no depth or mechanism."""
        strike, dip, rake = ((self.strike, self.dip, self.rake) if self.has_mechanism
                             else default_mechanism)
        return {"longitude": self.longitude, "latitude": self.latitude,
                "depth": default_depth_m if self.depth_m is None else self.depth_m,
                "magnitude": self.magnitude, "strike": strike, "dip": dip, "rake": rake}

    def summary(self) -> str:
        depth = "depth unknown" if self.depth_m is None else f"{self.depth_m / 1e3:.0f} km"
        mag = f"{self.magnitude_type} {'>' if self.magnitude_lower_bound else ''}" \
              f"{self.magnitude:.1f}"
        state = "" if self.actionable else f" [ignored: {self.reason}]"
        return (f"{self.event_id}: {mag} at {iso(self.origin_time_ns)}, "
                f"{self.latitude:.2f} N {self.longitude:.2f} E, {depth} "
                f"({self.agency or self.format}){state}")


def read_alert(path: str | Path) -> EarthquakeAlert:
    """An alert from a JSON, QuakeML or JMA XML file (format from the content)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, None, f"cannot read the alert: {exc}") from None
    return parse_alert(data, str(path))


def parse_alert(data: bytes, source: str = "<alert>") -> EarthquakeAlert:
    """An alert from its bytes (as received over a feed); ``source`` names it in errors."""
    if len(data) > MAX_BYTES:
        raise InputError(source, None, f"alert larger than {MAX_BYTES} bytes")
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        return _json(data, source)
    if head == b"<":
        return _xml(data, source)
    raise InputError(source, None, "not an alert: expected JSON or XML")


# -- JSON -------------------------------------------------------------------------------
def _json(data: bytes, source: str) -> EarthquakeAlert:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(source, None, f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InputError(source, None, "expected a JSON object")
    if doc.get("type") == "Feature":
        return _geojson(doc, source)

    def number(key: str, low: float, high: float, required: bool = True) -> float | None:
        value = doc.get(key)
        if value is None and not required:
            return None
        return _number(value, source, key, low, high)

    depth = (number("depth_m", -1e4, 8e5, False) if "depth_m" in doc else
             None if doc.get("depth_km") is None else
             1e3 * _number(doc["depth_km"], source, "depth_km", -10, 800))
    mech = doc.get("mechanism") or {}
    if not isinstance(mech, dict):
        raise InputError(source, "mechanism", "expected an object {strike, dip, rake}")
    strike, dip, rake = (None if mech.get(k) is None else
                         _number(mech[k], source, f"mechanism.{k}", lo, hi)
                         for k, lo, hi in (("strike", 0, 360), ("dip", 0, 90),
                                           ("rake", -180, 180)))
    status = doc.get("status", "normal")
    if status not in ("normal", "drill", "test"):
        raise InputError(source, "status", f"{status!r} is not normal, drill or test")
    return _finish(EarthquakeAlert(
        event_id=str(doc.get("event_id") or ""),
        origin_time_ns=_time(doc.get("origin_time"), source, "origin_time"),
        longitude=number("longitude", -180, 360), latitude=number("latitude", -90, 90),
        depth_m=depth, magnitude=number("magnitude", -2, 10.5),
        magnitude_type=str(doc.get("magnitude_type") or "M"), strike=strike, dip=dip,
        rake=rake, agency=str(doc.get("agency") or ""), status=status,
        format="json", path=source))


def _geojson(doc: dict, source: str) -> EarthquakeAlert:
    props = doc.get("properties") or {}
    coords = (doc.get("geometry") or {}).get("coordinates")
    if not isinstance(coords, list) or len(coords) < 2:
        raise InputError(source, "geometry.coordinates", "expected [lon, lat, depth_km]")
    ms = props.get("time")
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        raise InputError(source, "properties.time", "expected ms since the epoch")
    depth = None if len(coords) < 3 or coords[2] is None else \
        1e3 * _number(coords[2], source, "geometry.coordinates[2]", -10, 800)
    deleted = props.get("status") == "deleted"
    return _finish(EarthquakeAlert(
        event_id=str(doc.get("id") or props.get("code") or ""),
        origin_time_ns=int(ms) * 1_000_000,
        longitude=_number(coords[0], source, "geometry.coordinates[0]", -180, 360),
        latitude=_number(coords[1], source, "geometry.coordinates[1]", -90, 90),
        depth_m=depth, magnitude=_number(props.get("mag"), source, "properties.mag", -2, 10.5),
        magnitude_type=str(props.get("magType") or "M"), agency=str(props.get("net") or ""),
        format="geojson", path=source, actionable=not deleted,
        reason="event deleted by its agency" if deleted else ""))


# -- XML --------------------------------------------------------------------------------
def _xml(data: bytes, source: str):
    try:
        root = SafeET.fromstring(data)
    except DefusedXmlException as exc:
        raise InputError(source, None, f"refused unsafe XML ({type(exc).__name__})") from None
    except SafeET.ParseError as exc:
        raise InputError(source, None, f"malformed XML: {exc}") from None
    if root.tag.startswith("{http://quakeml.org/xmlns/"):
        return _quakeml(root, source)
    if root.tag.startswith("{http://xml.kishou.go.jp/jmaxml1/}"):
        return _jma(root, source)
    raise InputError(source, None, f"unknown XML alert (root element {root.tag})")


def _quakeml(root, source: str) -> EarthquakeAlert:
    event = root.find(f"{_QML}eventParameters/{_QML}event")
    if event is None:
        raise InputError(source, "eventParameters/event", "no event in the QuakeML file")

    def preferred(tag: str, ref: str):
        wanted = event.findtext(f"{_QML}{ref}")
        items = event.findall(f"{_QML}{tag}")
        for item in items:
            if wanted and item.get("publicID") == wanted.strip():
                return item
        return items[0] if items else None

    origin = preferred("origin", "preferredOriginID")
    magnitude = preferred("magnitude", "preferredMagnitudeID")
    if origin is None or magnitude is None:
        raise InputError(source, "event", "the event has no origin or no magnitude")

    def value(element, path: str, field: str, low: float, high: float,
              required: bool = True) -> float | None:
        text = element.findtext(f"{_QML}{path}/{_QML}value")
        if text is None and not required:
            return None
        return _number(text, source, field, low, high)

    mech = preferred("focalMechanism", "preferredFocalMechanismID")
    plane = None if mech is None else mech.find(
        f"{_QML}nodalPlanes/{_QML}nodalPlane1")
    strike = dip = rake = None
    if plane is not None:
        strike = value(plane, "strike", "nodalPlane1/strike", 0, 360)
        dip = value(plane, "dip", "nodalPlane1/dip", 0, 90)
        rake = value(plane, "rake", "nodalPlane1/rake", -180, 180)
    kind = (event.findtext(f"{_QML}type") or "earthquake").strip()
    status = "test" if kind == "not existing" else "normal"
    agency = origin.findtext(f"{_QML}creationInfo/{_QML}agencyID") or ""
    return _finish(EarthquakeAlert(
        event_id=event.get("publicID", ""),
        origin_time_ns=_time(origin.findtext(f"{_QML}time/{_QML}value"), source,
                             "origin/time"),
        longitude=value(origin, "longitude", "origin/longitude", -180, 360),
        latitude=value(origin, "latitude", "origin/latitude", -90, 90),
        depth_m=value(origin, "depth", "origin/depth", -1e4, 8e5, required=False),
        magnitude=value(magnitude, "mag", "magnitude/mag", -2, 10.5),
        magnitude_type=(magnitude.findtext(f"{_QML}type") or "M").strip(),
        strike=strike, dip=dip, rake=rake, agency=agency.strip(), status=status,
        format="quakeml", path=source))


def _jma(root, source: str) -> EarthquakeAlert:
    ns = {"r": "http://xml.kishou.go.jp/jmaxml1/",
          "h": "http://xml.kishou.go.jp/jmaxml1/informationBasis1/",
          "b": "http://xml.kishou.go.jp/jmaxml1/body/seismology1/",
          "eb": "http://xml.kishou.go.jp/jmaxml1/elementBasis1/"}
    status_text = (root.findtext("r:Control/r:Status", namespaces=ns) or "").strip()
    if status_text not in JMA_STATUS:
        raise InputError(source, "Control/Status", f"{status_text!r} is not one of "
                         f"{list(JMA_STATUS)}")
    info_text = (root.findtext("h:Head/h:InfoType", namespaces=ns) or "").strip()
    if info_text not in JMA_INFO_TYPE:
        raise InputError(source, "Head/InfoType", f"{info_text!r} is not one of "
                         f"{list(JMA_INFO_TYPE)}")
    event_id = (root.findtext("h:Head/h:EventID", namespaces=ns) or "").strip()
    issued = root.findtext("h:Head/h:ReportDateTime", namespaces=ns)
    quake = root.find("b:Body/b:Earthquake", namespaces=ns)
    if quake is None:
        raise InputError(source, "Body/Earthquake", "the bulletin carries no earthquake "
                         "(hypocentre and magnitude)")
    coord = quake.find("b:Hypocenter/b:Area/eb:Coordinate", namespaces=ns)
    if coord is None:
        raise InputError(source, "Hypocenter/Area/Coordinate", "missing")
    lat, lon, depth = _iso6709((coord.text or "").strip(), source)
    mag_el = quake.find("eb:Magnitude", namespaces=ns)
    if mag_el is None:
        raise InputError(source, "Earthquake/Magnitude", "missing")
    reason = ""
    lower = False
    mag_text = (mag_el.text or "").strip()
    condition = mag_el.get("condition", "")
    if mag_text.lower() == "nan":
        if "M8を超える" in condition or "Ｍ８を超える" in condition:
            magnitude, lower = 8.0, True
        else:
            magnitude, reason = math.nan, f"magnitude unknown ({condition or 'NaN'})"
    else:
        magnitude = _number(mag_text, source, "Earthquake/Magnitude", -2, 10.5)
    if lat is None:
        reason = reason or f"hypocentre unknown ({coord.get('description', '')})"
    status, info_type = JMA_STATUS[status_text], JMA_INFO_TYPE[info_text]
    return _finish(EarthquakeAlert(
        event_id=event_id,
        origin_time_ns=_time(quake.findtext("b:OriginTime", namespaces=ns), source,
                             "Earthquake/OriginTime"),
        longitude=math.nan if lon is None else lon, latitude=math.nan if lat is None else lat,
        depth_m=depth, magnitude=magnitude,
        magnitude_type=mag_el.get("type", "M"), magnitude_lower_bound=lower,
        agency=(root.findtext("r:Control/r:PublishingOffice", namespaces=ns) or "").strip(),
        status=status, info_type=info_type,
        issued_ns=None if issued is None else _time(issued, source, "Head/ReportDateTime"),
        datum=coord.get("datum", ""), format="jma", path=source,
        actionable=not reason, reason=reason))


def _iso6709(text: str, source: str) -> tuple[float | None, float | None, float | None]:
    """(lat, lon, depth_m) of an ISO 6709 point (module doc); all None when empty."""
    if text in ("", "/"):
        return None, None, None
    m = _ISO6709.match(text)
    if not m:
        raise InputError(source, "Hypocenter/Area/Coordinate",
                         f"{text!r} is not ISO 6709 (+DD.D+DDD.D-DEPTH/)")
    lat = _degrees(m.group(1), 2, source)
    lon = _degrees(m.group(2), 3, source)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise InputError(source, "Hypocenter/Area/Coordinate", f"{text!r} out of range")
    depth = None if m.group(3) is None else -float(m.group(3))
    return lat, lon, depth


def _degrees(text: str, width: int, source: str) -> float:
    """ISO 6709 angle: ±D(.D), ±DDMM(.M) or ±DDMMSS(.S) with ``width`` degree digits."""
    sign = -1.0 if text[0] == "-" else 1.0
    whole, _, frac = text[1:].partition(".")
    frac = float("0." + frac) if frac else 0.0
    n = len(whole)
    if n <= width:
        return sign * (int(whole) + frac)
    if n == width + 2:
        return sign * (int(whole[:width]) + (int(whole[width:]) + frac) / 60)
    if n == width + 4:
        return sign * (int(whole[:width]) + int(whole[width:width + 2]) / 60
                       + (int(whole[width + 2:]) + frac) / 3600)
    raise InputError(source, "Hypocenter/Area/Coordinate", f"angle {text!r} not ISO 6709")


# -- shared -----------------------------------------------------------------------------
def _number(value, source: str, field: str, low: float, high: float) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InputError(source, field, f"{value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(source, field, f"expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise InputError(source, field, f"must be a finite number in [{low:g}, {high:g}], "
                         f"got {value!r}")
    return value


def _time(text, source: str, field: str) -> int:
    if not isinstance(text, str):
        raise InputError(source, field, "missing or not a text time")
    try:
        return to_ns(parse_iso(text.strip().replace("Z", "+00:00"), assume_utc=False))
    except ValueError as exc:
        raise InputError(source, field, str(exc)) from None


def _finish(alert: EarthquakeAlert) -> EarthquakeAlert:
    """Not actionable: drills, tests, cancellations (the first reason found)."""
    if alert.status != "normal":
        return _with(alert, f"{alert.status} bulletin")
    if alert.info_type == "cancelled":
        return _with(alert, "cancelled by its agency")
    if alert.longitude > 180:
        return replace(alert, longitude=alert.longitude - 360)
    return alert


def _with(alert: EarthquakeAlert, reason: str) -> EarthquakeAlert:
    return replace(alert, actionable=False, reason=alert.reason or reason)
