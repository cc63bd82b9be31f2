"""`tsunami compile`: compiling ahead covers every kernel a run uses."""

import os
import subprocess
import sys
from pathlib import Path

from tsunami import cli, warmup
from tsunami.region import Region
from tsunami.scenario import Scenario
from tsunami.warmup import compile_kernels, is_cached, run_passes

REPO = Path(__file__).resolve().parents[1]

# In a fresh process (kernels loaded from the on-disk cache the earlier tests filled), so
# only what compile_kernels itself reached has overloads. The entry points: the kernels the
# package exports, the nesting kernels and the damage Monte Carlo (helpers they call, the
# private ones among them, are linked into them, not loaded on their own).
_CHECK = """
import numba
import tsunami.kernels as kernels
from tsunami.damage import uncertainty
from tsunami.kernels import nesting
from tsunami.warmup import compile_kernels
compile_kernels(["float32"])
entries = {f"kernels.{name}": getattr(kernels, name) for name in kernels.__all__}
entries |= {f"nesting.{name}": obj for name, obj in vars(nesting).items()
            if not name.startswith("_")}
entries["uncertainty._simulate"] = uncertainty._simulate
for name, obj in entries.items():
    if isinstance(obj, numba.core.registry.CPUDispatcher):
        print(name, len(obj.overloads))
"""


def test_compiling_ahead_reaches_every_kernel():
    out = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    rows = [line.split() for line in out if line]
    assert len(rows) >= 14
    missed = [name for name, overloads in rows if overloads == "0"]
    assert not missed, f"compile_kernels does not reach {missed}"


def test_the_compile_command_reports_what_it_compiled(capsys):
    assert cli.main(["compile", "--dtype", "float32", "--scheme", "leapfrog",
                     "--no-damage"]) == 0
    captured = capsys.readouterr()
    assert "compiled leapfrog float32" in captured.err
    assert "kernels compiled or loaded from the cache" in captured.out


def test_a_run_knows_which_kernels_the_cache_lacks(tmp_path):
    compile_kernels(["float32"], ["leapfrog"], damage=False)  # (loads from the suite's cache)
    assert is_cached("float32", "leapfrog")
    probe = ("from tsunami.warmup import is_cached\n"
             "print(is_cached('float32', 'leapfrog'), is_cached('float32', 'fv2'))")
    empty = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True, env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)})
    assert empty.stdout.split() == ["False", "False"]


def test_the_demo_region_compiles_the_leapfrog_first_then_fv2():
    region = Region.load(REPO / "grids/okushiri1993/region.toml")
    scenario = Scenario.load(REPO / "scenarios/okushiri1993_hno.toml")
    assert run_passes(region, scenario) == [("float32", "leapfrog"), ("float32", "fv2")]


class _Helper:
    def __init__(self, passes):
        self.passes, self.waited, self.code = passes, False, None

    def wait(self, timeout=None):
        self.waited, self.code = True, 0

    def poll(self):
        return self.code

    def terminate(self):
        raise AssertionError("a helper that finished is not terminated")


def test_missing_passes_compile_here_and_beside_the_run_at_once(monkeypatch):
    """The first missing pass compiles in this process, the rest in one background
    process at the same time, and the run waits for both; nothing where all are cached."""
    here, helpers, lines = [], [], []
    monkeypatch.setattr(warmup, "compile_kernels", lambda dtypes, schemes, damage, log=None:
                        here.append((*dtypes, *schemes)) or {})
    monkeypatch.setattr(warmup, "compile_in_background",
                        lambda *passes, damage: helpers.append(_Helper(passes)) or helpers[-1])
    passes = [("float32", "leapfrog"), ("float32", "fv2"), ("float64", "fv2")]
    monkeypatch.setattr(warmup, "is_cached", lambda dtype, scheme: scheme == "leapfrog")
    seconds = warmup.compile_missing(passes, log=lines.append)
    assert here == [("float32", "fv2")]
    assert [h.passes for h in helpers] == [(("float64", "fv2"),)] and helpers[0].waited
    assert "float32 fv2, float64 fv2" in lines[0] and "all" in seconds
    monkeypatch.setattr(warmup, "is_cached", lambda dtype, scheme: True)
    here.clear(), lines.clear()
    assert warmup.compile_missing(passes, log=lines.append) == {} and not here and not lines


def test_a_failed_compile_ahead_is_said_and_leaves_the_run_to_compile(monkeypatch):
    def broken(dtypes, schemes, damage, log=None):
        raise RuntimeError("no compiler")

    helpers, lines = [], []
    monkeypatch.setattr(warmup, "compile_kernels", broken)
    monkeypatch.setattr(warmup, "compile_in_background",
                        lambda *passes, damage: helpers.append(_Helper(passes)) or helpers[-1])
    monkeypatch.setattr(warmup, "is_cached", lambda dtype, scheme: False)
    seconds = warmup.compile_missing([("float32", "leapfrog"), ("float32", "fv2")],
                                     log=lines.append)
    assert "compiling ahead failed (RuntimeError: no compiler)" in lines[1]
    assert helpers[0].waited and list(seconds) == ["all"]
