"""Errors raised to users: each names what is wrong and where."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input: names the file and the field (key, column, band) at fault."""

    def __init__(self, source: str | Path | None, field: str | None, message: str) -> None:
        self.source = str(source) if source is not None else None
        self.field = field
        where = ", ".join(p for p in (self.source, f"field '{field}'" if field else None) if p)
        super().__init__(f"{where}: {message}" if where else message)


class BlowUpError(RuntimeError):
    """The solution became non-finite or ran away: stops the run before any output."""

    def __init__(self, grid: str, time: float, location: tuple[float, float], detail: str):
        self.grid, self.time, self.location = grid, time, location
        super().__init__(
            f"numerical blow-up on grid '{grid}' at t = {time:.2f} s near "
            f"x = {location[0]:.6f}, y = {location[1]:.6f}: {detail}. Reduce the CFL safety "
            "factor, check the bathymetry for spikes, or raise dry_depth.")
