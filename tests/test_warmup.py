"""`tsunami compile`: compiling ahead covers every kernel a run uses."""

import subprocess
import sys

from tsunami import cli

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
