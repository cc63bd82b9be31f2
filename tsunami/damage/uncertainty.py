"""Spread of damage counts: Monte Carlo over independent building outcomes and scenarios.

Each building's damage state is an independent categorical draw with its probabilities
P(DS = k); a row that stands for ``count`` buildings draws a multinomial. When several
forecast scenarios are given (a sweep), every draw first picks a scenario by its weight,
so the spread combines the curves' spread and the scenario spread. Counts are kept per
draw for the town, each district and each output cell; their 5th and 95th percentiles are
the published range (``inverted_cdf`` quantiles: whole
buildings).

Why Monte Carlo and not the normal approximation of the Poisson-binomial: the counts per
100 m cell are small (often 0-20 buildings, probabilities near 0 or 1), where the normal
approximation gives negative or clipped bounds; one uniform number per building and draw
is cheap (about 1e8 per second in the Numba loop below).
"""

from __future__ import annotations

import numba
import numpy as np

#: Empirical quantiles that are simulated counts themselves (whole buildings), not
#: interpolations between two of them.
QUANTILE_METHOD = "inverted_cdf"
#: Bound on the per-cell count array (cells x draws x layers) held at once, in elements.
CELL_CHUNK_ELEMENTS = 4_000_000


@numba.njit(cache=True)
def _simulate(rng, exceed, weight, scenario_of_draw, district, cell, cell0, severe,
              town, districts, cells):
    """Add the simulated counts of buildings ``exceed`` (S, n, K nested P(DS >= k)),
    drawing from the NumPy Generator ``rng``.

    ``town`` (D, K+1), ``districts`` (G, D, K+1), ``cells`` (C, D, 2): counts per draw of
    each state (0..K); per cell the counts with DS >= severe and with DS = K.
    ``district``/``cell``: index per building (-1: none); ``cell0`` offsets ``cell``.
    """
    n = weight.size
    n_states = exceed.shape[2]
    for d in range(scenario_of_draw.size):
        s = scenario_of_draw[d]
        for i in range(n):
            w = weight[i]
            if w == 0:
                continue
            g = district[i]
            c = cell[i] - cell0
            if w == 1:
                u = rng.random()
                k = 0
                while k < n_states and u < exceed[s, i, k]:
                    k += 1
                town[d, k] += 1
                if g >= 0:
                    districts[g, d, k] += 1
                if cell[i] >= 0:
                    if k >= severe:
                        cells[c, d, 0] += 1
                    if k == n_states:
                        cells[c, d, 1] += 1
            else:
                # multinomial as successive binomials from the top state down
                remaining = w
                mass = 1.0
                for k in range(n_states, -1, -1):
                    upper = exceed[s, i, k - 1] if k > 0 else 1.0
                    lower = exceed[s, i, k] if k < n_states else 0.0
                    q = upper - lower
                    if k == 0 or remaining == 0:
                        m = remaining
                    elif mass <= 0.0:
                        m = 0
                    else:
                        m = rng.binomial(remaining, min(1.0, max(0.0, q / mass)))
                    remaining -= m
                    mass -= q
                    if m == 0:
                        continue
                    town[d, k] += m
                    if g >= 0:
                        districts[g, d, k] += m
                    if cell[i] >= 0:
                        if k >= severe:
                            cells[c, d, 0] += m
                        if k == n_states:
                            cells[c, d, 1] += m


def simulate_counts(exceed: np.ndarray, weight: np.ndarray, scenario_weights: np.ndarray,
                    district: np.ndarray, n_districts: int, cell: np.ndarray, n_cells: int,
                    severe: int, draws: int = 1000, seed: int = 1993,
                    quantiles: tuple[float, float] = (0.05, 0.95)) -> dict[str, np.ndarray]:
    """Simulated damage counts.

    ``exceed``: (S, n, 6) nested P(DS >= k) per scenario (no NaN rows); ``weight``: (n,)
    buildings per row; ``scenario_weights``: (S,) summing to 1; ``district``/``cell``:
    (n,) indices (-1 none). Returns ``town`` (draws, 7) and ``districts``
    (n_districts, draws, 7) counts per state and draw, and per cell ``cell_quantiles``
    (n_cells, 2 layers [DS >= severe, DS = 6], 2 quantiles).
    """
    exceed = np.ascontiguousarray(exceed, dtype=np.float64)
    n_scen, _, n_states = exceed.shape
    # one seeded generator for everything: the same inputs give the same ranges
    rng = np.random.default_rng(seed)
    scen = rng.choice(n_scen, size=draws, p=scenario_weights).astype(np.int64)
    town = np.zeros((draws, n_states + 1), dtype=np.int64)
    districts = np.zeros((max(n_districts, 0), draws, n_states + 1), dtype=np.int64)
    cell_q = np.zeros((n_cells, 2, 2))
    weight = np.ascontiguousarray(weight, dtype=np.int64)
    district = np.ascontiguousarray(district, dtype=np.int64)
    cell = np.ascontiguousarray(cell, dtype=np.int64)
    # Buildings sorted by cell, processed in chunks of cells so that the per-draw cell
    # counts stay bounded in memory whatever the inventory size.
    order = np.argsort(cell, kind="stable")
    cell_sorted = cell[order]
    per_chunk = max(1, CELL_CHUNK_ELEMENTS // (2 * draws))
    no_cell = int(np.searchsorted(cell_sorted, 0))  # rows with cell -1 come first
    chunks = [(order[:no_cell], 0, 0)] if no_cell else []
    for c0 in range(0, n_cells, per_chunk):
        c1 = min(n_cells, c0 + per_chunk)
        lo, hi = np.searchsorted(cell_sorted, [c0, c1])
        chunks.append((order[lo:hi], c0, c1))
    for idx, c0, c1 in chunks:
        cells = np.zeros((c1 - c0, draws, 2), dtype=np.int32)
        if idx.size:
            _simulate(rng, np.ascontiguousarray(exceed[:, idx]), weight[idx], scen, district[idx],
                      cell[idx], c0, severe, town, districts, cells)
        if c1 > c0:
            q = np.quantile(cells, quantiles, axis=1, method=QUANTILE_METHOD)
            cell_q[c0:c1] = np.moveaxis(q, 0, -1)
    return {"town": town, "districts": districts, "cell_quantiles": cell_q}


def count_ranges(counts: np.ndarray, quantiles: tuple[float, float] = (0.05, 0.95)
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Percentiles over draws of counts per state (axis -2 = draws, -1 = states) and of
    counts at or above each state: returns (per_state, at_least), each (..., 2, K+1)."""
    at_least = np.flip(np.cumsum(np.flip(counts, axis=-1), axis=-1), axis=-1)
    q_state = np.moveaxis(np.quantile(counts, quantiles, axis=-2, method=QUANTILE_METHOD), 0, -2)
    q_least = np.moveaxis(np.quantile(at_least, quantiles, axis=-2, method=QUANTILE_METHOD),
                          0, -2)
    return q_state, q_least
