"""Time loop: advance a model to a stop time with callbacks, progress and health checks."""

from __future__ import annotations

import sys
import time as wallclock
from collections.abc import Callable, Iterable

from tqdm import tqdm

from tsunami.cores import CHUNK_S, CoreBudget


class Simulation:
    """Run ``model`` (a ShallowWaterModel or NestedModel) until ``stop_time`` (s).

    ``callbacks`` are called with the model after every (root) step; gauge recorders are
    callbacks. Every ``health_interval`` steps each grid is checked for a blow-up
    (non-finite or runaway surface), which raises :class:`tsunami.errors.BlowUpError`.
    With ``progress=True`` a bar on stderr shows simulated time and the time to finish.
    Kernel threads are leased from ``cores`` (default: the host's budget from the
    environment, :mod:`tsunami.cores`) for chunks of steps, so concurrent runs share the
    host's cores instead of oversubscribing them.
    """

    def __init__(self, model, stop_time: float, callbacks: Iterable[Callable] = (),
                 progress: bool = False, health_interval: int = 20,
                 description: str = "simulating", cores: CoreBudget | None = None) -> None:
        if not 0 < stop_time < float("inf"):
            raise ValueError(f"stop_time must be a positive finite time (s), got {stop_time}")
        self.model = model
        self.stop_time = float(stop_time)
        self.callbacks = list(callbacks)
        self.progress = progress
        self.health_interval = health_interval
        self.description = description
        self.cores = cores if cores is not None else CoreBudget.from_environment()
        self.wall_time = 0.0
        self.steps = 0
        #: Steps taken with each number of kernel threads (what the core budget gave).
        self.steps_by_threads: dict[int, int] = {}

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
            # Kernel threads come from the host's core budget, a chunk of steps at a time.
            with self.cores.join() as member:
                while not self._done():
                    with member.lease() as threads:
                        until = wallclock.perf_counter() + CHUNK_S
                        before = self.steps
                        while not self._done() and wallclock.perf_counter() < until:
                            self._step()
                        self.steps_by_threads[threads] = (self.steps_by_threads.get(
                            threads, 0) + self.steps - before)
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

    def _done(self) -> bool:
        return self.model.time >= self.stop_time - 1e-9 * max(1.0, self.stop_time)

    def _step(self) -> None:
        self.model.step()
        self.steps += 1
        for callback in self.callbacks:
            callback(self.model)
        if self.steps % self.health_interval == 0:
            self.model.check_health()
