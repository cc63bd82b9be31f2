"""Fixtures shared by several test files, and the kernels compiled on a spare core."""

import os
import threading
import warnings

import pytest

from tsunami.warmup import compile_in_background

# What the first test files do not compile themselves but later ones need, compiled into
# Numba's on-disk cache on the second core while the first tests compile the float32
# leapfrog on the first: a clean clone's suite otherwise spends about 3 of its minutes
# compiling one kernel after another (README, "Compile ahead").
_compiler = None


def pytest_sessionstart(session):
    global _compiler
    if os.environ.get("TSUNAMI_TEST_COMPILE_AHEAD", "1") == "1":
        _compiler = compile_in_background(("float32", "fv2"), ("float64", "leapfrog"))


def pytest_sessionfinish(session):
    if _compiler is not None and _compiler.poll() is None:
        _compiler.kill()
        _compiler.wait()


@pytest.fixture(scope="session")
def twin(tmp_path_factory):
    """The twin experiment (tests/test_realtime_source.py): unit-source database of the
    Okushiri zone on a 2' grid and the true run; built once per session."""
    from test_realtime_source import make_twin

    return make_twin(tmp_path_factory)


@pytest.fixture
def client_warnings(monkeypatch):
    """(category, text) of each warning raised during the test on its own thread, a Dask
    client's. Workers of an in-process cluster are threads: what they raise is left out,
    as on a real cluster (processes or machines) it reaches only their logs. The calls to
    warnings.warn are counted, not what is shown: rasterio's reprojection on a worker
    thread ignores every warning of the process while it runs (catch_warnings and
    simplefilter("ignore"), which are not per thread), and two of them interleaved
    can leave "ignore" in place."""
    client, shown, warn = threading.get_ident(), [], warnings.warn

    def counted(message, category=UserWarning, stacklevel=1, **kwargs):
        if threading.get_ident() == client:
            shown.append((category, str(message)))
        warn(message, category, stacklevel + 1, **kwargs)

    monkeypatch.setattr(warnings, "warn", counted)
    return shown
