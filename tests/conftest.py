"""Fixtures shared by several test files."""

import pytest


@pytest.fixture(scope="session")
def twin(tmp_path_factory):
    """The twin experiment (tests/test_realtime_source.py): unit-source database of the
    Okushiri zone on a 2' grid and the true run; built once per session."""
    from test_realtime_source import make_twin

    return make_twin(tmp_path_factory)
