"""Time loop: advance a model to a stop time with callbacks, progress and health checks."""

from __future__ import annotations

import sys
import time as wallclock
from collections.abc import Callable, Iterable

from tqdm import tqdm


class Simulation:
    """Run ``model`` (a ShallowWaterModel or NestedModel) until ``stop_time`` (s).

    ``callbacks`` are called with the model after every (root) step; gauge recorders are
    callbacks. Every ``health_interval`` steps each grid is checked for a blow-up
    (non-finite or runaway surface), which raises :class:`tsunami.errors.BlowUpError`.
    With ``progress=True`` a bar on stderr shows simulated time and the time to finish.
    """

    def __init__(self, model, stop_time: float, callbacks: Iterable[Callable] = (),
                 progress: bool = False, health_interval: int = 20,
                 description: str = "simulating") -> None:
        if not 0 < stop_time < float("inf"):
            raise ValueError(f"stop_time must be a positive finite time (s), got {stop_time}")
        self.model = model
        self.stop_time = float(stop_time)
        self.callbacks = list(callbacks)
        self.progress = progress
        self.health_interval = health_interval
        self.description = description
        self.wall_time = 0.0
        self.steps = 0

    def run(self) -> None:
        model = self.model
        start = wallclock.perf_counter()
        bar = None
        if self.progress:
            bar = tqdm(total=round(self.stop_time), unit="s", desc=self.description,
                       file=sys.stderr, dynamic_ncols=True, mininterval=0.5,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| t = {n:.0f}/{total:.0f} s "
                                  "simulated [{elapsed} elapsed, {remaining} to go]")
        shown = 0
        try:
            while model.time < self.stop_time - 1e-9 * max(1.0, self.stop_time):
                model.step()
                self.steps += 1
                for callback in self.callbacks:
                    callback(model)
                if self.steps % self.health_interval == 0:
                    model.check_health()
                if bar is not None:
                    now = min(round(model.time), round(self.stop_time))
                    if now > shown:
                        bar.update(now - shown)
                        shown = now
            model.check_health()
        finally:
            if bar is not None:
                bar.close()
            self.wall_time += wallclock.perf_counter() - start
