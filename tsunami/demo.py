"""Where the shipped demo's inputs lie (a leaf module: the CLI, benchmarks and validation
cases all import the paths from here)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_REGION = ROOT / "grids" / "okushiri1993" / "region.toml"
DEMO_SCENARIO = ROOT / "scenarios" / "okushiri1993_hno.toml"
