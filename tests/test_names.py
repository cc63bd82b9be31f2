"""Names that become file and folder names."""

import pytest

from tsunami.errors import InputError
from tsunami.names import check_name


@pytest.mark.parametrize("name", ["okushiri1993_hno", "Aonae", "奥尻町青苗", "2024-01-01T16.10",
                                  "event 7"])
def test_good_names(name):
    assert check_name(name, "r.toml", "town[0].name") == name


@pytest.mark.parametrize("name", ["", "  ", ".", "..", "../../escaped", "2024/01/01", "a:b*?",
                                  "a\\b", "x\n", "ends.", " lead", "CON", "nul.txt", "x" * 101,
                                  3])
def test_bad_names_refused_with_file_and_field(name):
    with pytest.raises(InputError) as err:
        check_name(name, "r.toml", "town[0].name")
    assert "r.toml, field 'town[0].name'" in str(err.value)
