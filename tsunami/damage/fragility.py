"""Building fragility functions, kept as data (``data/fragility.csv``) and evaluated here.

A fragility curve gives the probability that a building reaches or exceeds damage state
``k`` for a flow demand ``x`` (inundation depth in m for every shipped curve; flow speed,
momentum flux and hydrodynamic force per unit width are supported for user tables)::

    P(DS >= k | x) = Phi((ln x - mu_k) / sigma_k)      (lognormal CDF; mu, sigma in ln units)

Curves fitted state by state can cross at small demands (for wood, P(>= DS5) exceeds
P(>= DS4) below about 0.2 m), which would make P(DS = 4) negative. Nesting is enforced at
evaluation time by cumulative clipping, ``P(>= k) <- min(P(>= k), P(>= k-1))``, as the
second published implementation of Suppasri et al. (2013) does: it changes nothing where
the curves are ordered and is continuous and monotone in the demand.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import ndtr

from tsunami.errors import InputError

#: The six damage states of Suppasri et al. (2013), Table 1 (DS0 = no damage).
DAMAGE_STATES: tuple[str, ...] = ("minor", "moderate", "major", "complete", "collapse",
                                  "washed_away")
N_STATES = len(DAMAGE_STATES)
STATE_LABELS: tuple[str, ...] = ("DS0 none", *(
    f"DS{k} {name.replace('_', ' ')}" for k, name in enumerate(DAMAGE_STATES, start=1)))

STRUCTURES: tuple[str, ...] = ("wood", "rc", "steel", "masonry")

#: What each demand means and the field variable it is read from.
DEMANDS: dict[str, tuple[str, str]] = {
    "depth": ("m", "max_depth"),
    "speed": ("m/s", "max_speed"),
    "momentum_flux": ("m3/s2", "max_momentum_flux"),
    # drag force per unit width rho C_D (h u^2)max / 2, see DamageParameters
    "hydrodynamic_force": ("kN/m", "max_momentum_flux"),
}

DEFAULT_TABLE = Path(__file__).with_name("data") / "fragility.csv"
DEFAULT_SOURCE = "suppasri2013"  # the source_id used unless another is chosen
COLUMNS = ("source_id", "table", "structure", "storeys", "damage_state", "damage_state_name",
           "demand", "demand_unit", "mu", "sigma", "citation", "verification")


@dataclass(frozen=True)
class CurveSet:
    """The curves of one building class: damage states 1..K of one source and table.

    ``mu`` and ``sigma`` (ln units of the demand) have one entry per damage state; states
    above K (when a source defines fewer than six) have probability 0.
    """

    source_id: str
    table: str
    structure: str
    storeys: str  # "all", "1", "2" or "3+"
    demand: str  # a key of DEMANDS
    mu: np.ndarray
    sigma: np.ndarray
    citation: str
    verification: str

    @property
    def key(self) -> str:
        return f"{self.source_id}:{self.table}:{self.structure}:{self.storeys}"

    def exceedance(self, demand: np.ndarray) -> np.ndarray:
        """P(DS >= k), shape (n, 6), nested; NaN where the demand is NaN."""
        mu = np.zeros(N_STATES)
        sigma = np.ones(N_STATES)
        mu[: self.mu.size] = self.mu
        sigma[: self.sigma.size] = self.sigma
        p = exceedance(demand, mu, sigma)
        p[:, self.mu.size:] = np.where(np.isnan(p[:, self.mu.size:]), np.nan, 0.0)
        return p


def exceedance(demand: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Nested exceedance probabilities P(DS >= k | demand) for k = 1..K.

    ``demand``: shape (n,) in the curves' units (m for depth); zero or negative demand
    gives 0, NaN gives NaN. ``mu``, ``sigma``: shape (K,) or (n, K), ln units. Returns
    shape (n, K), each row non-increasing in k (cumulative clipping).
    """
    x = np.asarray(demand, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        logx = np.log(np.where(x > 0, x, np.nan))
    z = (logx[:, None] - np.asarray(mu)) / np.asarray(sigma)
    p = ndtr(z)
    # ln(0) is -inf: P = 0 on dry ground; keep NaN only for a missing demand
    p = np.where(np.isnan(x)[:, None], np.nan, np.where(x[:, None] > 0, p, 0.0))
    # Cumulative clipping (nesting); fmin keeps NaN rows NaN without spreading warnings.
    return np.fmin.accumulate(p, axis=1) if p.size else p


def state_probabilities(exceed: np.ndarray) -> np.ndarray:
    """P(DS = k) for k = 0..6 from nested P(DS >= k), k = 1..6: shape (n, 7), rows sum
    to 1 (NaN rows stay NaN)."""
    n = exceed.shape[0]
    upper = np.concatenate([np.ones((n, 1)), exceed], axis=1)
    lower = np.concatenate([exceed, np.zeros((n, 1))], axis=1)
    return upper - lower


def expected_state(exceed: np.ndarray) -> np.ndarray:
    """Expected damage state E[DS] = sum_k P(DS >= k) (0 = none ... 6 = washed away)."""
    return exceed.sum(axis=1)


@dataclass(frozen=True)
class FragilityTable:
    """All curve sets of a fragility CSV (see ``data/SOURCE.md`` for the columns)."""

    sets: tuple[CurveSet, ...]
    path: Path

    def find(self, structure: str, storeys: str, table: str | None = None,
             source_id: str | None = None) -> CurveSet | None:
        for s in self.sets:
            if (s.structure == structure and s.storeys == storeys
                    and (table is None or s.table == table)
                    and (source_id is None or s.source_id == source_id)):
                return s
        return None

    def select(self, structure: str, storeys: int, scheme: str = "storeys",
               source_id: str = DEFAULT_SOURCE) -> CurveSet:
        """The curve set for one building class.

        ``scheme="storeys"``: the by-storeys curves (table B) where the source has them
        for this structure (wood and RC in Suppasri et al. 2013), else the by-material
        curves (table A: steel, masonry). ``scheme="material"``: always table A.
        """
        cls = storeys_class(storeys)
        candidates = []
        if scheme == "storeys":
            candidates.append(self.find(structure, cls, source_id=source_id))
        candidates.append(self.find(structure, "all", source_id=source_id))
        for c in candidates:
            if c is not None:
                return c
        raise InputError(self.path, "structure",
                         f"no {source_id} curve for structure {structure!r} "
                         f"(storeys {cls}); known: {sorted({s.structure for s in self.sets})}")

    def source_ids(self) -> list[str]:
        return sorted({s.source_id for s in self.sets})


def storeys_class(storeys: int) -> str:
    """'1', '2' or '3+' (the storey classes of Suppasri et al. 2013)."""
    return "1" if storeys <= 1 else "2" if storeys == 2 else "3+"


def load_fragility(path: str | Path | None = None) -> FragilityTable:
    """Read a fragility CSV (default: the shipped table, ``tsunami/damage/data/
    fragility.csv``) and check it: required columns, known demands with their units,
    sigma > 0, damage states 1..K consecutive within each curve set.
    """
    path = Path(path) if path is not None else DEFAULT_TABLE
    if not path.exists():
        raise InputError(path, None, "fragility table not found")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(path, missing[0], f"missing column(s) {missing}")
        rows = list(reader)
    groups: dict[tuple[str, str, str, str, str], list[tuple[int, float, float, dict]]] = {}
    for line, row in enumerate(rows, start=2):
        where = f"{path}:{line}"
        demand = row["demand"].strip()
        if demand not in DEMANDS:
            raise InputError(where, "demand", f"{demand!r} is not one of {sorted(DEMANDS)}")
        if row["demand_unit"].strip() != DEMANDS[demand][0]:
            raise InputError(where, "demand_unit", f"{demand} must be in {DEMANDS[demand][0]}, "
                             f"got {row['demand_unit']!r}")
        try:
            state = int(row["damage_state"])
            mu, sigma = float(row["mu"]), float(row["sigma"])
        except ValueError as exc:
            raise InputError(where, "mu/sigma/damage_state", str(exc)) from None
        if not (np.isfinite(mu) and np.isfinite(sigma) and sigma > 0):
            raise InputError(where, "sigma", f"need finite mu and sigma > 0, got {mu}, {sigma}")
        if not 1 <= state <= N_STATES:
            raise InputError(where, "damage_state", f"must be 1..{N_STATES}, got {state}")
        structure = row["structure"].strip().lower()
        if structure not in STRUCTURES:
            raise InputError(where, "structure", f"{structure!r} is not one of {STRUCTURES}")
        key = (row["source_id"].strip(), row["table"].strip(), structure,
               row["storeys"].strip(), demand)
        groups.setdefault(key, []).append((state, mu, sigma, row))
    sets = []
    for (source_id, table, structure, storeys, demand), items in groups.items():
        items.sort(key=lambda t: t[0])
        states = [t[0] for t in items]
        if states != list(range(1, len(states) + 1)):
            raise InputError(path, "damage_state", f"{source_id} {table} {structure} "
                             f"{storeys}: states must run 1..K without gaps, got {states}")
        sets.append(CurveSet(source_id, table, structure, storeys, demand,
                             np.array([t[1] for t in items]), np.array([t[2] for t in items]),
                             items[0][3]["citation"], items[0][3]["verification"]))
    if not sets:
        raise InputError(path, None, "no curves in the fragility table")
    return FragilityTable(tuple(sets), path)
