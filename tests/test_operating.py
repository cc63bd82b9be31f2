"""Operating the CLI: every failure is one line on stderr with a documented exit status."""

from __future__ import annotations

import errno
import re
import sys
from pathlib import Path

import pytest

from tsunami import cli
from tsunami.errors import EXIT_CODES, EXIT_ENVIRONMENT, EXIT_INPUT, EXIT_INTERNAL

ROOT = Path(__file__).resolve().parents[1]
REGION = ROOT / "grids" / "conical_island" / "region.toml"
SCENARIO = ROOT / "scenarios" / "conical_island_case_a.toml"


def fail_with(monkeypatch, exc: BaseException) -> None:
    """Make the simulation fail with ``exc`` (the inputs load and pass their checks)."""
    def run(*args, **kwargs):
        raise exc

    monkeypatch.setattr("tsunami.runner.run", run)


@pytest.mark.parametrize("exc, code, message", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/out/fields_basin.nc"),
     EXIT_ENVIRONMENT, r"error: cannot write /data/out/fields_basin.nc: No space left on "
                       r"device; the disk is full: free space"),
    (RuntimeError("NetCDF: HDF error"), EXIT_ENVIRONMENT,
     r"error: cannot write: NetCDF: HDF error; usually a full disk"),
    (PermissionError(errno.EACCES, "Permission denied", "/data/out"), EXIT_ENVIRONMENT,
     r"error: cannot write /data/out: Permission denied; permission denied: make the folder "
     r"writable"),
    (OSError(errno.ENOTEMPTY, "Directory not empty", "/box/.staging", None,
             "/box/forecast-002"),
     EXIT_ENVIRONMENT, r"error: cannot rename /box/.staging to /box/forecast-002: Directory "
                       r"not empty; a folder that should be empty is not"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/share"), EXIT_ENVIRONMENT,
     r"file system is read-only"),
    (MemoryError(), EXIT_ENVIRONMENT, r"error: out of memory"),
    (ValueError("grid 'basin': depth has no value at x = 1"), EXIT_INPUT,
     r"error: invalid input: grid 'basin': depth has no value at x = 1; the traceback is in "),
    (ZeroDivisionError("division by zero"), EXIT_INTERNAL,
     r"internal error: ZeroDivisionError: division by zero. This is a bug: please report it "
     r"with the traceback; the traceback is in "),
])
def test_each_failure_is_one_line_with_its_exit_status(tmp_path, monkeypatch, capsys, exc,
                                                       code, message):
    monkeypatch.setenv("TSUNAMI_LOG_DIR", str(tmp_path / "logs"))
    fail_with(monkeypatch, exc)
    assert cli.main(["run", str(REGION), str(SCENARIO), "--out", str(tmp_path / "out"),
                     "--no-progress"]) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(message, err), err
    if "traceback is in" in err:
        saved = Path(err.strip().rsplit(" ", 1)[-1])
        assert saved.parent == tmp_path / "logs" and "Traceback" in saved.read_text()
    assert code in EXIT_CODES


def test_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    fail_with(monkeypatch, ZeroDivisionError("division by zero"))
    code = cli.main(["--debug", "run", str(REGION), str(SCENARIO), "--out",
                     str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == EXIT_INTERNAL
    assert "Traceback (most recent call last)" in err and "internal error:" in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /sys")
def test_an_unwritable_out_folder_is_refused_before_the_run(tmp_path, monkeypatch, capsys):
    """/sys refuses new files even to root: a real permission error, found before any
    simulation (which would fail this test if it started)."""
    fail_with(monkeypatch, AssertionError("the run must not start"))
    code = cli.main(["run", str(REGION), str(SCENARIO), "--out", "/sys/tsunami-test-out",
                     "--no-progress"])
    err = capsys.readouterr().err
    assert code == EXIT_ENVIRONMENT, err
    assert err.startswith("error: cannot write to --out /sys/tsunami-test-out: Permission "
                          "denied; permission denied"), err


def test_python_api_refuses_non_finite_numbers():
    import numpy as np

    from tsunami import Grid, ShallowWaterModel, Simulation

    grid = Grid(nx=4, ny=4, x0=0.0, y0=0.0, dx=1.0, dy=1.0)
    with pytest.raises(ValueError, match="max_speed"):
        ShallowWaterModel(grid, np.ones(grid.shape), max_speed=np.inf)
    with pytest.raises(ValueError, match="dry_depth"):
        ShallowWaterModel(grid, np.ones(grid.shape), dry_depth=np.nan)
    model = ShallowWaterModel(grid, np.ones(grid.shape))
    for stop in (np.inf, np.nan, -1.0):
        with pytest.raises(ValueError, match="stop_time"):
            Simulation(model, stop)
    with pytest.raises(ValueError, match="finite"):
        Grid(nx=4, ny=4, x0=0.0, y0=np.nan, dx=1.0, dy=1.0)


def test_sigterm_interrupts_a_command_like_ctrl_c():
    """A batch scheduler's SIGTERM reaches the command as an interruption (exit 130,
    "interrupted"), so sweeps and database builds log where they stopped."""
    import subprocess

    code = ("import os, signal, sys, time\n"
            "from tsunami import cli\n"
            "def long_command(args):\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    time.sleep(30)\n"
            "    return 0\n"
            "cli._bench = long_command\n"
            "sys.exit(cli.main(['bench']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 130
    assert "interrupted" in done.stderr


@pytest.mark.parametrize(("option", "value"), [("--workers", "abc"), ("--workers", "0,2"),
                                               ("--duration", "nan"), ("--duration", "-5")])
def test_fan_out_bench_options_are_checked_before_it_runs(option, value, capsys):
    assert cli.main(["bench", "--fan-out", option, value]) == 2
    assert f"field '{option}'" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["10", "20,x", "20,-5", "20,nan", "inf,10"])
def test_accuracy_bench_spacings_are_checked_before_it_runs(value, capsys):
    assert cli.main(["bench", "--accuracy", "--spacings", value]) == 2
    assert "--spacings" in capsys.readouterr().err


def test_accuracy_bench_measures_errors_against_the_finest_fv2_run():
    from tsunami.bench import accuracy

    result = accuracy((40.0, 20.0), target=0.5)
    assert [(r.scheme, r.spacing) for r in result.runs] == [
        ("leapfrog", 40.0), ("leapfrog", 20.0), ("fv2", 40.0), ("fv2", 20.0)]
    assert result.reference is result.runs[-1]
    coarse = result.runs[2]
    area, runup = result.errors(coarse)
    assert area == pytest.approx(coarse.area_m2 / result.reference.area_m2 - 1.0)
    # the coarser runs flood less than the reference (first order at the shoreline)
    assert area < 0 and runup < 0 and result.errors(result.runs[0])[0] < area
    assert result.time_to_target("fv2") is coarse  # the reference itself never counts
    assert "time to within 50 %" in result.report()


def test_the_errors_cross_a_process_boundary_whole():
    """A sweep's or fan-out's worker in another process hands its exception back pickled:
    each of the project's errors comes back with its message, its fields and what was
    attached to it (the input warnings found before it). Pickle's default rebuilt them
    from the one formatted message and failed (TypeError: missing arguments)."""
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    from tsunami.errors import BlowUpError, EnvironmentFault, Finding, InputError

    bad = InputError("region.toml", "grid[1].ratio", "must be odd")
    bad.input_findings = [Finding("region.toml", "dem[0].vertical", "land and sea swapped?")]
    errors = [bad, InputError(None, None, "no file"),
              BlowUpError("Aonae_10m", 312.0, (139.45, 42.05), "the surface is not finite"),
              EnvironmentFault("/out", "write", "no space left", "free space", errno.ENOSPC)]
    for error in errors:
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)
        assert back.__dict__ == error.__dict__
    with ProcessPoolExecutor(1) as pool:  # as a worker process returns it
        with pytest.raises(InputError) as raised:
            pool.submit(_raise, bad).result()
    assert raised.value.field == "grid[1].ratio"
    assert raised.value.input_findings == bad.input_findings


def _raise(error: Exception) -> None:
    raise error
