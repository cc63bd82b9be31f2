"""The station catalogue shared by the real-time chain."""

import pytest

from tsunami.errors import InputError
from tsunami.realtime.stations import StationCatalogue


def test_toml_and_csv_with_bom(tmp_path):
    toml = tmp_path / "net.toml"
    toml.write_text('[[station]]\nid = "P02"\nlon = 142.5016\nlat = 38.5002\n'
                    'depth_m = 1100\nkind = "bottom_pressure"\n')
    csv = tmp_path / "net.csv"
    csv.write_bytes(b"\xef\xbb\xbfid,lon,lat,depth_m,kind,sampling_s\n"
                    b"802,142.0969,39.2586,204,sea_surface_height,5\n")
    assert StationCatalogue.load(toml)["P02"].depth_m == 1100.0
    buoy = StationCatalogue.load(csv)["802"]
    assert (buoy.lon, buoy.kind, buoy.sampling_s) == (142.0969, "sea_surface_height", 5.0)


@pytest.mark.parametrize("row, field", [
    ("802,nan,39.2,204,sea_surface_height", "line 2.lon"),
    ("802,142.1,39.2,inf,sea_surface_height", "line 2.depth_m"),
    ("802,402.1,39.2,204,sea_surface_height", "line 2.lon"),
    ("../x,142.1,39.2,204,sea_surface_height", "line 2.id"),
    ("802,142.1,39.2,204,tide", "line 2.kind"),
    ("802,142.1,abc,204,sea_surface_height", "line 2, lat"),
])
def test_bad_rows_name_file_and_field(tmp_path, row, field):
    path = tmp_path / "net.csv"
    path.write_text("id,lon,lat,depth_m,kind\n" + row + "\n")
    with pytest.raises(InputError) as err:
        StationCatalogue.load(path)
    assert str(path) in str(err.value) and f"field '{field}'" in str(err.value)


def test_repeated_id_refused(tmp_path):
    path = tmp_path / "net.csv"
    path.write_text("id,lon,lat,depth_m,kind\nA,1,1,10,bottom_pressure\n"
                    "A,2,2,10,bottom_pressure\n")
    with pytest.raises(InputError, match="repeats"):
        StationCatalogue.load(path)
