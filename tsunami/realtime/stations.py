"""The station catalogue: where each offshore gauge is, how deep, and what it measures.

A catalogue is a TOML file with one ``[[station]]`` table per gauge, or a CSV file with
the header ``id,lon,lat,depth_m,kind`` (optional further columns ``name`` and
``sampling_s``). Positions are WGS84/JGD2011 longitude and latitude in degrees (east and
north positive, longitudes in -180..180); ``depth_m`` is the still-water depth at the
station in metres, positive down. ``kind`` is ``bottom_pressure`` (an ocean-bottom
pressure gauge: S-net, DONET, DART, KPG/MPG cabled sensors; values in Pa or in metres of
equivalent water column) or ``sea_surface_height`` (a GNSS buoy or tide gauge: values in
metres).
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from tsunami.config import Table, load_toml
from tsunami.errors import InputError

KINDS = ("bottom_pressure", "sea_surface_height")
STATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_DEPTH_M = 11_000.0  # deeper than the Challenger Deep is a typo


@dataclass(frozen=True)
class Station:
    """One gauge of the catalogue (lon/lat in degrees, depth in m positive down)."""

    id: str
    lon: float
    lat: float
    depth_m: float
    kind: str
    name: str = ""
    sampling_s: float | None = None


@dataclass(frozen=True)
class StationCatalogue:
    """The stations of a network, by id."""

    path: Path | None
    stations: dict[str, Station]

    def __getitem__(self, station_id: str) -> Station:
        return self.stations[station_id]

    def __contains__(self, station_id: object) -> bool:
        return station_id in self.stations

    def __iter__(self):
        return iter(self.stations.values())

    def __len__(self) -> int:
        return len(self.stations)

    @classmethod
    def load(cls, path: str | Path) -> StationCatalogue:
        """Read a catalogue from TOML (``[[station]]``) or CSV; errors name file and field."""
        path = Path(path)
        if path.suffix.lower() == ".csv":
            return cls(path, _by_id(path, list(_read_csv(path))))
        root = Table(load_toml(path, "station catalogue"), path, "")
        root.check_keys({"station"}, {"station"})
        stations = []
        for t in root.tables("station"):
            t.check_keys({"id", "lon", "lat", "depth_m", "kind", "name", "sampling_s"},
                         {"id", "lon", "lat", "depth_m", "kind"})
            stations.append(_station(path, t.field, t.data))
        return cls(path, _by_id(path, stations))


def _read_csv(path: Path):
    if not path.exists():
        raise InputError(path, None, "station catalogue file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"not UTF-8 text: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    required = {"id", "lon", "lat", "depth_m", "kind"}
    missing = required - set(reader.fieldnames or ())
    if missing:
        raise InputError(path, None, f"missing column(s) {sorted(missing)}; expected "
                         "id,lon,lat,depth_m,kind[,name,sampling_s]")
    for line, row in enumerate(reader, start=2):
        data = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
        for key in ("lon", "lat", "depth_m", "sampling_s"):
            if key in data:
                try:
                    data[key] = float(data[key])
                except ValueError:
                    raise InputError(path, f"line {line}, {key}",
                                     f"expected a number, got {data[key]!r}") from None
        yield _station(path, f"line {line}", data)


def _station(path: Path, where: str, data: dict) -> Station:
    def error(key: str, message: str) -> InputError:
        return InputError(path, f"{where}.{key}" if where else key, message)

    def number(key: str, low: float, high: float) -> float:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise error(key, f"expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value) or not low <= value <= high:
            raise error(key, f"must be a finite number in [{low:g}, {high:g}], got {value!r}")
        return value

    station_id = data.get("id")
    if not isinstance(station_id, str) or not STATION_ID.match(station_id):
        raise error("id", f"{station_id!r} is not a station id (letters, digits, '_', '.', "
                    "'-'; at most 64 characters, not starting with a symbol)")
    kind = data.get("kind")
    if kind not in KINDS:
        raise error("kind", f"{kind!r} is not one of {list(KINDS)}")
    sampling = data.get("sampling_s")
    return Station(
        id=station_id, lon=number("lon", -180.0, 180.0), lat=number("lat", -90.0, 90.0),
        depth_m=number("depth_m", 0.0, MAX_DEPTH_M), kind=kind,
        name=str(data.get("name", "")),
        sampling_s=None if sampling is None else number("sampling_s", 1e-3, 86_400.0))


def _by_id(path: Path, stations: list[Station]) -> dict[str, Station]:
    if not stations:
        raise InputError(path, "station", "the catalogue lists no station")
    by_id: dict[str, Station] = {}
    for s in stations:
        if s.id in by_id:
            raise InputError(path, "id", f"station id {s.id!r} repeats")
        by_id[s.id] = s
    return by_id
