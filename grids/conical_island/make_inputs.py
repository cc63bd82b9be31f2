"""Regenerate the conical-island example inputs from the NTHMP BP6 description and data.

    python grids/conical_island/make_inputs.py

Writes ``conical_island.xyz`` (the basin and truncated cone as an x y z text grid, a
laboratory frame in metres, depth positive down) and ``../../scenarios/
conical_island_case_a_wave.csv`` (the measured incident pulse at gauge 1, case A).
"""

from pathlib import Path

import numpy as np

from tsunami.validation.conical_island import incident_pulse, island_depth

here = Path(__file__).parent
x = np.arange(5.0, 25.0 + 1e-9, 0.1)
y = np.arange(0.0, 27.6 + 1e-9, 0.1)
xx, yy = np.meshgrid(x, y)
depth = island_depth(xx, yy)
with open(here / "conical_island.xyz", "w") as f:
    f.write("# x_m y_m depth_m  (NTHMP BP6 basin, Briggs et al. 1995; depth positive down)\n")
    for xv, yv, dv in zip(xx.ravel(), yy.ravel(), depth.ravel(), strict=True):
        f.write(f"{xv:.2f} {yv:.2f} {dv:.4f}\n")
t, eta = incident_pulse("a")
with open(here.parent.parent / "scenarios" / "conical_island_case_a_wave.csv", "w") as f:
    f.write("time_s,eta_m\n")
    for tv, ev in zip(t - t[0], eta, strict=True):
        f.write(f"{tv:.2f},{ev:.5f}\n")
