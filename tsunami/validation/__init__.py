"""Validation against analytical solutions and laboratory benchmarks.

Each case builds a model through the public API, runs it, and returns
:class:`Metric` rows (model value, reference value, error and the bound it must meet)
plus comparison plots. ``tsunami validate`` prints the rows as a table; the tests assert
the same bounds. Benchmark data ship in ``tsunami/validation/data`` (see SOURCE.md there).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Metric:
    """One checked quantity of a validation case.

    ``error`` is relative (fraction of the reference) for ``kind="relative"``, an absolute
    difference in the metric's unit for ``"absolute"``, and a fraction of the wave height
    for ``"normalised rms"``. ``bound=None`` marks a figure that is reported, not judged.
    """

    case: str
    name: str
    model: float
    reference: float
    error: float
    bound: float | None
    kind: str = "relative"
    unit: str = ""

    @property
    def passed(self) -> bool | None:
        if self.bound is None:
            return None
        return bool(math.isfinite(self.error) and abs(self.error) <= self.bound)


def relative(case: str, name: str, model: float, reference: float, bound: float | None,
             unit: str = "") -> Metric:
    """A metric judged by |model - reference| / |reference|."""
    error = (model - reference) / abs(reference) if reference else math.inf
    return Metric(case, name, float(model), float(reference), float(error), bound,
                  "relative", unit)


@dataclass
class CaseResult:
    """What one validation case produced."""

    case: str
    metrics: list[Metric] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    wall_time: float = 0.0

    @property
    def passed(self) -> bool:
        return all(m.passed is not False for m in self.metrics)


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[Path | None], CaseResult]
    quick: bool
    description: str


def registry() -> dict[str, Case]:
    """All validation cases by name (imported lazily: each pulls in matplotlib)."""
    from tsunami.validation import (
        analytic,
        beach,
        conical_island,
        monai,
        okushiri,
        synthetic_coast,
        tohoku2011,
    )

    cases = [
        Case("lake_at_rest", analytic.lake_at_rest, True,
             "lake at rest over uneven bathymetry with dry islands, 1,000 steps"),
        Case("closed_basin", analytic.closed_basin, True,
             "volume conservation in a closed basin with wetting and drying"),
        Case("thacker", analytic.thacker_parabolic_bowl, True,
             "Thacker (1981) planar surface oscillating in a parabolic bowl"),
        Case("bp1", beach.bp1, True,
             "NTHMP BP1: analytical solitary wave on a 1:19.85 beach, H/d = 0.019"),
        Case("bp4_nonbreaking", beach.bp4_nonbreaking, True,
             "NTHMP BP4: laboratory solitary wave, H/d = 0.0185"),
        Case("bp4_breaking", beach.bp4_breaking, True,
             "NTHMP BP4: laboratory breaking solitary wave, H/d = 0.3"),
        Case("bp6_a", conical_island.case_a, False, "NTHMP BP6 conical island, case A"),
        Case("bp6_b", conical_island.case_b, False, "NTHMP BP6 conical island, case B"),
        Case("bp6_c", conical_island.case_c, False, "NTHMP BP6 conical island, case C"),
        Case("bp7", monai.bp7, False,
             "NTHMP BP7 Monai valley laboratory runup, fv2 and leapfrog (1.4 cm grid)"),
        Case("synthetic_coast", synthetic_coast.synthetic_coast, False,
             "inundation convergence on a synthetic coast, 20-2.5 m, fv2 and leapfrog"),
        Case("okushiri_field", okushiri.field_comparison, False,
             "Okushiri 1993 demo (60 min, nested to 10 m) against the surveyed runup"),
        Case("okushiri_monai_3m", okushiri.valley_head, False,
             "Okushiri 1993, first 15 min, with a 3 m fv2 level over the Monai valley head: "
             "its maximum runup against the 31.7 m surveyed"),
        Case("okushiri_alert", okushiri.alert_forecast, False,
             "Okushiri 1993 from the alert alone: the watch service's forecast 1 (alert "
             "ensemble envelope) against the surveyed runup, K <= 1.25"),
        Case("tohoku2011", tohoku2011.case, False,
             "Tohoku 2011 offshore records: Satake et al. (2013) forward, and source "
             "inversions at 10-30 min (builds the 55-unit database on first use)"),
    ]
    return {c.name: c for c in cases}


def format_table(metrics: list[Metric]) -> str:
    """The rows as a fixed-width text table."""
    width = max([40] + [len(m.name) + len(m.unit) + 3 for m in metrics])
    header = f"{'case':<16} {'metric':<{width}} {'model':>10} {'measured':>10} {'error':>9} " \
             f"{'bound':>8}  pass"
    lines = [header, "-" * len(header)]
    for m in metrics:
        if m.kind == "absolute":
            err, bound = f"{m.error:+.3g}", (f"{m.bound:.3g}" if m.bound is not None else "-")
        else:
            err = f"{100 * m.error:+.3g}%"
            bound = f"{100 * m.bound:.3g}%" if m.bound is not None else "-"
        verdict = {True: "yes", False: "NO", None: "(report)"}[m.passed]
        name = f"{m.name} [{m.unit}]" if m.unit else m.name
        lines.append(f"{m.case:<16} {name:<{width}} {m.model:>10.4g} {m.reference:>10.4g} "
                     f"{err:>9} {bound:>8}  {verdict}")
    return "\n".join(lines)
