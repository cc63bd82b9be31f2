"""Exposure inputs: buildings, population and districts, read with precise errors.

Buildings (:func:`load_buildings`) come as footprints or points from GeoPackage, GeoJSON,
Shapefile (anything pyogrio reads), a CSV with ``lon``/``lat`` columns (degrees, taken as
EPSG:4326 = JGD2011 to within a metre), or a gridded building-count GeoTIFF (one point per
cell at its centre, ``count`` = the cell value rounded to whole buildings). Every returned
GeoDataFrame has the columns:

=============  ==================================================================
building_id    text id (from ``id``/``building_id``/``buildingID``, else the row number)
structure      ``wood``, ``rc``, ``steel`` or ``masonry``
storeys        storeys above ground (integer >= 1)
count          buildings represented by the row (integer >= 0; 1 for a footprint)
defaulted      which attributes came from the defaults ("", "structure", "storeys", both)
=============  ==================================================================

Attribute names and values understood (case-insensitive):

- structure column: ``structure``, ``structure_type``, ``material``, ``type``,
  ``buildingStructureType``; values: wood/wooden/timber/W/木造 -> wood;
  rc/src/reinforced concrete/concrete/RC造/SRC造/鉄筋コンクリート造 -> rc;
  steel/S/S造/鉄骨造 -> steel; masonry/brick/stone/block/組積造/ブロック造 -> masonry;
  基盤地図情報 ``type``: 普通建物 (ordinary) -> wood, 堅ろう建物 (robust) -> rc (the
  notes' "普通 = assume wood, 堅ろう = non-wood" mapping; taking non-wood as RC is our
  assumption). Anything else is an error naming the file, the column and the value.
- storeys column: ``storeys``, ``stories``, ``floors``, ``storeysAboveGround``, ``階数``.
- count column: ``count``, ``buildings``, ``n_buildings``.

Missing columns or empty values take the defaults of :class:`ExposureDefaults`
(``DEFAULTS`` holds the named regional ones; "japan" is the default).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from affine import Affine
from pyproj import CRS

from tsunami.damage import meshcode
from tsunami.errors import InputError

VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".fgb", ".gml", ".kml", ".zip"}
RASTER_SUFFIXES = {".tif", ".tiff"}


@dataclass(frozen=True)
class ExposureDefaults:
    """Attributes given to buildings that lack them, with the reason."""

    structure: str = "wood"
    storeys: int = 2
    note: str = ""


#: Regional defaults for missing attributes. Japan: detached houses, overwhelmingly
#: wooden with 1-2 storeys, dominate coastal towns; 2 storeys is the commoner class in
#: Suppasri et al. (2013)'s survey-based by-storey curves. An assumption, stated as such.
DEFAULTS: dict[str, ExposureDefaults] = {
    "japan": ExposureDefaults("wood", 2, "Japan: missing structure -> wood, missing storeys "
                                         "-> 2 (typical detached house; assumption)"),
    "japan_rural": ExposureDefaults("wood", 1, "rural Japanese fishing/farming settlement: "
                                               "wood, 1 storey (assumption)"),
}

_STRUCTURE_WORDS = {
    "wood": ("wood", "wooden", "timber", "w", "木造", "木", "普通建物", "普通"),
    "rc": ("rc", "src", "reinforced concrete", "concrete", "rc造", "src造", "鉄筋コンクリート",
           "鉄筋コンクリート造", "鉄骨鉄筋コンクリート造", "堅ろう建物", "堅ろう", "堅牢建物"),
    "steel": ("steel", "s", "s造", "鉄骨", "鉄骨造"),
    "masonry": ("masonry", "brick", "stone", "block", "cb", "組積造", "れんが造", "ブロック造"),
}
STRUCTURE_ALIASES: dict[str, str] = {w: k for k, words in _STRUCTURE_WORDS.items() for w in words}
STRUCTURE_COLUMNS = ("structure", "structure_type", "material", "type",
                     "buildingstructuretype", "構造")
STOREYS_COLUMNS = ("storeys", "stories", "floors", "storeysaboveground", "levels", "階数")
COUNT_COLUMNS = ("count", "buildings", "n_buildings")
ID_COLUMNS = ("building_id", "buildingid", "id", "fid", "gml_id")
LON_COLUMNS = ("lon", "lng", "longitude", "経度")
LAT_COLUMNS = ("lat", "latitude", "緯度")


def _find(columns, names) -> str | None:
    lower = {str(c).lower(): c for c in columns}
    for n in names:
        if n in lower:
            return lower[n]
    return None


def _defaults(defaults: str | ExposureDefaults) -> ExposureDefaults:
    if isinstance(defaults, ExposureDefaults):
        return defaults
    if defaults not in DEFAULTS:
        raise InputError(None, "defaults", f"unknown regional defaults {defaults!r}; "
                         f"known: {sorted(DEFAULTS)}")
    return DEFAULTS[defaults]


def load_buildings(path: str | Path, defaults: str | ExposureDefaults = "japan", *,
                   layer: str | None = None, structure_field: str | None = None,
                   storeys_field: str | None = None) -> gpd.GeoDataFrame:
    """Read a building inventory and normalise its attributes (see the module docstring).

    ``layer``: the layer of a multi-layer file (GeoPackage). ``structure_field`` /
    ``storeys_field``: column names when they are not among the recognised ones.
    Raises :class:`InputError` (naming file and field) for unreadable files, files without
    a CRS, unknown structure types and bad storey or count values.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "building file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        gdf = _read_points_csv(path)
    elif suffix in RASTER_SUFFIXES:
        gdf = _read_count_raster(path)
    else:
        try:
            gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
        except Exception as exc:  # pyogrio's DataSourceError and friends
            raise InputError(path, layer, f"cannot read buildings: {exc}") from None
        if gdf.crs is None:
            raise InputError(path, "crs", "the file has no coordinate reference system; "
                             "assign one (e.g. EPSG:6668 for JGD2011 lon/lat) before use")
    return normalise_buildings(gdf, path, defaults, structure_field=structure_field,
                               storeys_field=storeys_field)


def _read_points_csv(path: Path) -> gpd.GeoDataFrame:
    df = _read_csv(path)
    lon, lat = _find(df.columns, LON_COLUMNS), _find(df.columns, LAT_COLUMNS)
    if lon is None or lat is None:
        raise InputError(path, "lon/lat", f"a building CSV needs lon and lat columns (degrees); "
                         f"got {list(df.columns)}")
    xs = pd.to_numeric(df[lon], errors="coerce").to_numpy()
    ys = pd.to_numeric(df[lat], errors="coerce").to_numpy()
    bad = ~(np.isfinite(xs) & np.isfinite(ys) & (np.abs(ys) <= 90) & (np.abs(xs) <= 360))
    if bad.any():
        k = int(np.argmax(bad))
        raise InputError(path, f"{lon}/{lat}", f"row {k + 2}: not a longitude/latitude in "
                         f"degrees: {df[lon].iloc[k]!r}, {df[lat].iloc[k]!r}")
    return gpd.GeoDataFrame(df.drop(columns=[lon, lat]), geometry=gpd.points_from_xy(xs, ys),
                            crs="EPSG:4326")


def _read_csv(path: Path) -> pd.DataFrame:
    """CSV as text columns; UTF-8 first, then Shift_JIS (e-Stat's encoding)."""
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return pd.read_csv(path, dtype=str, encoding=encoding, keep_default_na=False)
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputError(path, None, f"malformed CSV: {exc}") from None
    raise InputError(path, None, "CSV is neither UTF-8 nor Shift_JIS text")


def _read_count_raster(path: Path) -> gpd.GeoDataFrame:
    """A gridded building count: a point at each cell centre with a count > 0."""
    with rasterio.open(path) as src:
        if src.crs is None:
            raise InputError(path, "crs", "the raster has no coordinate reference system")
        counts = src.read(1, masked=True).astype(np.float64).filled(0.0)
        transform = src.transform
        crs = src.crs
    counts = np.where(np.isfinite(counts), counts, 0.0)
    if (counts < 0).any():
        raise InputError(path, "band 1", "building counts must not be negative")
    rows, cols = np.nonzero(np.rint(counts) > 0)
    xs, ys = _apply(transform, cols + 0.5, rows + 0.5)
    return gpd.GeoDataFrame({"count": np.rint(counts[rows, cols]).astype(np.int64)},
                            geometry=gpd.points_from_xy(xs, ys), crs=CRS.from_user_input(crs))


def _apply(t: Affine, col: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map (col, row) pixel coordinates through an affine transform."""
    col = np.asarray(col, dtype=np.float64)
    row = np.asarray(row, dtype=np.float64)
    return t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f


def normalise_buildings(gdf: gpd.GeoDataFrame, source: str | Path | None = None,
                        defaults: str | ExposureDefaults = "japan", *,
                        structure_field: str | None = None,
                        storeys_field: str | None = None) -> gpd.GeoDataFrame:
    """Give any GeoDataFrame of buildings the standard columns (see module docstring)."""
    src = str(source) if source is not None else gdf.attrs.get("source", "buildings")
    d = _defaults(defaults)
    if gdf.crs is None:
        raise InputError(src, "crs", "the buildings have no coordinate reference system")
    geom = gdf.geometry.values
    empty = shapely.is_empty(np.asarray(geom)) | pd.isna(np.asarray(geom, dtype=object))
    if empty.any():
        raise InputError(src, "geometry", f"{int(empty.sum())} building(s) without geometry "
                         f"(first at row {int(np.argmax(empty)) + 1})")
    n = len(gdf)
    defaulted_s = np.zeros(n, dtype=bool)
    defaulted_n = np.zeros(n, dtype=bool)
    col = structure_field or _find(gdf.columns, STRUCTURE_COLUMNS)
    if structure_field and structure_field not in gdf.columns:
        raise InputError(src, structure_field, "no such column")
    if col is None:
        structure = np.full(n, d.structure, dtype=object)
        defaulted_s[:] = True
    else:
        raw = gdf[col].astype("string").str.strip().str.lower().fillna("")
        missing = raw.isin(["", "nan", "none", "null", "unknown"]).to_numpy()
        mapped = raw.map(STRUCTURE_ALIASES)
        unknown = mapped.isna().to_numpy() & ~missing
        if unknown.any():
            values = sorted(set(gdf[col].astype(str)[unknown]))
            first = int(np.argmax(unknown)) + 1
            raise InputError(src, str(col), f"unknown structure type(s) {values[:5]} in "
                             f"{int(unknown.sum())} row(s) (first row {first}); "
                             "expected wood, rc, steel or masonry")
        structure = np.where(missing, d.structure, mapped.to_numpy(dtype=object, na_value=""))
        defaulted_s = missing
    col = storeys_field or _find(gdf.columns, STOREYS_COLUMNS)
    if storeys_field and storeys_field not in gdf.columns:
        raise InputError(src, storeys_field, "no such column")
    if col is None:
        storeys = np.full(n, d.storeys, dtype=np.int64)
        defaulted_n[:] = True
    else:
        raw = gdf[col].astype("string").str.strip().fillna("")
        missing = raw.isin(["", "nan", "none", "null"]).to_numpy()
        num = pd.to_numeric(raw.where(~missing), errors="coerce").to_numpy(dtype=np.float64)
        bad = ~missing & ~(np.isfinite(num) & (num >= 1) & (num < 200) & (num == np.round(num)))
        if bad.any():
            k = int(np.argmax(bad))
            raise InputError(src, str(col), f"row {k + 1}: storeys must be a whole number >= 1, "
                             f"got {gdf[col].iloc[k]!r}")
        storeys = np.where(missing, d.storeys, np.nan_to_num(num)).astype(np.int64)
        defaulted_n = missing
    col = _find(gdf.columns, COUNT_COLUMNS)
    if col is None:
        count = np.ones(n, dtype=np.int64)
    else:
        num = pd.to_numeric(gdf[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~(np.isfinite(num) & (num >= 0) & (num == np.round(num)))
        if bad.any():
            k = int(np.argmax(bad))
            raise InputError(src, str(col), f"row {k + 1}: count must be a whole number >= 0, "
                             f"got {gdf[col].iloc[k]!r}")
        count = num.astype(np.int64)
    col = _find(gdf.columns, ID_COLUMNS)
    ids = (gdf[col].astype(str).to_numpy() if col is not None
           else np.array([str(i + 1) for i in range(n)], dtype=object))
    if "defaulted" in gdf.columns:  # already normalised once: keep what was defaulted then
        before = gdf["defaulted"].astype(str).to_numpy(dtype=str)
        defaulted_s = defaulted_s | (np.char.find(before, "structure") >= 0)
        defaulted_n = defaulted_n | (np.char.find(before, "storeys") >= 0)
    defaulted = np.where(defaulted_s & defaulted_n, "structure,storeys",
                         np.where(defaulted_s, "structure", np.where(defaulted_n, "storeys", "")))
    out = gpd.GeoDataFrame({"building_id": ids, "structure": structure.astype(str),
                            "storeys": storeys, "count": count,
                            "defaulted": defaulted.astype(str)},
                           geometry=gdf.geometry.values, crs=gdf.crs)
    out.attrs["source"] = src
    out.attrs["defaults"] = gdf.attrs.get("defaults") or d.note or (
        f"structure -> {d.structure}, storeys -> {d.storeys}")
    return out


# -- population ---------------------------------------------------------------------------

@dataclass
class Population:
    """Population counts on cells (census mesh or raster), as polygons in ``crs``.

    ``cells``: shapely polygons; ``people``: persons per cell; ``codes``: mesh codes or
    raster cell ids (text); ``suppressed``: cells whose value was suppressed (``*`` or
    blank in e-Stat files) and counted as 0.
    """

    cells: np.ndarray
    people: np.ndarray
    codes: np.ndarray
    crs: CRS
    source: str
    kind: str  # "mesh" or "raster"
    suppressed: int = 0

    @property
    def total(self) -> float:
        return float(self.people.sum())


POPULATION_COLUMNS = ("population", "pop", "people", "人口（総数）", "人口(総数)", "人口総数",
                      "総数", "t001140001", "t001141001", "t001142001", "t001231001")


def load_population(path: str | Path, *, field: str | None = None,
                    crs: str | None = None) -> Population:
    """Read a population grid.

    - GeoTIFF: band 1 = persons per cell (no-data and NaN -> 0). Must carry a CRS.
    - CSV of JIS X 0410 mesh codes (e-Stat 国勢調査 地域メッシュ統計 or a plain
      ``KEY_CODE,population`` file): UTF-8 or Shift_JIS; a second header row of labels
      (as e-Stat writes) is skipped; suppressed values (``*``, ``-``, blank) count as 0
      and are reported. ``field``: the population column when it is not one of
      ``population``, ``人口（総数）``, ``T00114xx001``.
    - Vector polygons (GeoPackage, GeoJSON, ...) with a population column.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "population file not found")
    suffix = path.suffix.lower()
    if suffix in RASTER_SUFFIXES:
        return _population_raster(path)
    if suffix == ".csv":
        return _population_mesh_csv(path, field)
    try:
        gdf = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:
        raise InputError(path, None, f"cannot read population: {exc}") from None
    if gdf.crs is None:
        if crs is None:
            raise InputError(path, "crs", "the file has no coordinate reference system")
        gdf = gdf.set_crs(crs)
    col = field or _find(gdf.columns, POPULATION_COLUMNS)
    if col is None or col not in gdf.columns:
        raise InputError(path, field or "population", f"no population column in "
                         f"{list(gdf.columns)}")
    people = pd.to_numeric(gdf[col], errors="coerce").to_numpy(dtype=np.float64)
    suppressed = int((~np.isfinite(people)).sum())
    people = np.nan_to_num(people)
    if (people < 0).any():
        raise InputError(path, col, "population must not be negative")
    return Population(np.asarray(gdf.geometry.values), people,
                      np.array([str(i) for i in range(len(gdf))], dtype=object),
                      CRS.from_user_input(gdf.crs), str(path), "polygons", suppressed)


def _population_raster(path: Path) -> Population:
    with rasterio.open(path) as src:
        if src.crs is None:
            raise InputError(path, "crs", "the raster has no coordinate reference system")
        band = src.read(1, masked=True).astype(np.float64)
        transform: Affine = src.transform
        crs = CRS.from_user_input(src.crs)
    values = np.where(np.ma.getmaskarray(band), 0.0, band.filled(0.0))
    values = np.where(np.isfinite(values), values, 0.0)
    if (values < 0).any():
        raise InputError(path, "band 1", "population must not be negative")
    rows, cols = np.nonzero(values > 0)
    x0, y0 = _apply(transform, cols, rows)
    x1, y1 = _apply(transform, cols + 1, rows + 1)
    cells = shapely.box(np.minimum(x0, x1), np.minimum(y0, y1),
                        np.maximum(x0, x1), np.maximum(y0, y1))
    codes = np.array([f"r{r}c{c}" for r, c in zip(rows, cols, strict=True)], dtype=object)
    return Population(cells, values[rows, cols], codes, crs, str(path), "raster")


def _population_mesh_csv(path: Path, field: str | None) -> Population:
    df = _read_csv(path)
    key = _find(df.columns, ("key_code", "keycode", "mesh_code", "meshcode", "code", "mesh"))
    if key is None:
        raise InputError(path, "KEY_CODE", f"no mesh-code column (KEY_CODE) in {list(df.columns)}")
    # e-Stat files carry a second header row of Japanese labels: use it to find the total
    labels = {}
    if len(df) and not str(df[key].iloc[0]).strip().isdigit():
        labels = {c: str(df[c].iloc[0]).strip() for c in df.columns}
        df = df.iloc[1:].reset_index(drop=True)
    col = field
    if col is None:
        col = _find(df.columns, POPULATION_COLUMNS)
        if col is None:
            col = next((c for c, lab in labels.items() if lab.lower() in POPULATION_COLUMNS),
                       None)
    if col is None or col not in df.columns:
        raise InputError(path, field or "population", f"no population column in "
                         f"{list(df.columns)}; name it with field=")
    codes = df[key].astype(str).str.strip().to_numpy()
    try:
        bounds = meshcode.decode(codes)
    except ValueError as exc:
        raise InputError(path, str(key), str(exc)) from None
    raw = df[col].astype(str).str.strip()
    people = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    suppressed = ~np.isfinite(people)
    bad = suppressed & ~raw.isin(["", "*", "-", "X", "x", "…"]).to_numpy()
    if bad.any():
        k = int(np.argmax(bad))
        raise InputError(path, str(col), f"row {k + 2}: not a number: {raw.iloc[k]!r}")
    people = np.where(suppressed, 0.0, people)
    if (people < 0).any():
        raise InputError(path, str(col), "population must not be negative")
    if len(set(codes)) != len(codes):
        warnings.warn(f"{path}: repeated mesh codes; their populations are added",
                      stacklevel=2)
    cells = shapely.box(bounds[:, 0], bounds[:, 1], bounds[:, 2], bounds[:, 3])
    return Population(cells, people, codes.astype(object), CRS.from_user_input(meshcode.MESH_CRS),
                      str(path), "mesh", int(suppressed.sum()))


# -- districts ------------------------------------------------------------------------------

NAME_COLUMNS = ("district", "name", "name_ja", "n03_004", "s_name", "moji", "town", "地区")


def load_districts(path: str | Path, name_field: str | None = None) -> gpd.GeoDataFrame:
    """District polygons with a ``district`` name column (from ``name_field``, or a column
    called district/name/N03_004/S_NAME/..., else the first text column, else numbers)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "districts file not found")
    try:
        gdf = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:
        raise InputError(path, None, f"cannot read districts: {exc}") from None
    return normalise_districts(gdf, path, name_field)


def normalise_districts(gdf: gpd.GeoDataFrame, source: str | Path | None = None,
                        name_field: str | None = None) -> gpd.GeoDataFrame:
    src = str(source) if source is not None else gdf.attrs.get("source", "districts")
    if gdf.crs is None:
        raise InputError(src, "crs", "the districts have no coordinate reference system")
    kinds = shapely.get_type_id(np.asarray(gdf.geometry.values))
    if not np.isin(kinds, (3, 6)).all():
        raise InputError(src, "geometry", "districts must be polygons")
    if name_field is not None and name_field not in gdf.columns:
        raise InputError(src, name_field, "no such column")
    col = name_field or _find(gdf.columns, NAME_COLUMNS)
    if col is None:
        text = [c for c in gdf.columns if c != gdf.geometry.name and gdf[c].dtype == object]
        col = text[0] if text else None
    names = (gdf[col].astype(str).to_numpy() if col is not None
             else np.array([f"district {i + 1}" for i in range(len(gdf))]))
    if len(set(names)) != len(names):
        raise InputError(src, str(col), "district names must be unique")
    out = gpd.GeoDataFrame({"district": names}, geometry=gdf.geometry.values, crs=gdf.crs)
    out.attrs["source"] = src
    return out
