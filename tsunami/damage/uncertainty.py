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

from dataclasses import dataclass

import numba
import numpy as np

#: Empirical quantiles that are simulated counts themselves (whole buildings), not
#: interpolations between two of them.
QUANTILE_METHOD = "inverted_cdf"
#: Bound on the per-cell count array (cells x draws x layers) held at once, in elements.
CELL_CHUNK_ELEMENTS = 4_000_000


# nogil: partitions run in parallel threads under Dask's default scheduler
@numba.njit(cache=True, nogil=True)
def _simulate(rng, exceed, weight, scenario_of_draw, district, cell, cell0, severe,
              town, districts, cells):
    """Add the simulated counts of buildings ``exceed`` (S, n, K nested P(DS >= k)),
    drawing from the NumPy Generator ``rng``.

    ``town`` (D, K+1), ``districts`` (G, D, K+1), ``cells`` (C, D, 2): counts per draw of
    each state (0..K); per cell the counts with DS >= severe and with DS = K.
    ``district``/``cell``: index per building (-1: none); ``cell0`` offsets ``cell``.
    """
    # Building by building, draws inner: the rows of ``exceed`` stay in cache and the
    # per-draw counts are written in order.
    n_states = exceed.shape[2]
    for i in range(weight.size):
        w = weight[i]
        if w == 0:
            continue
        g = district[i]
        c = cell[i] - cell0 if cell[i] >= 0 else -1
        for d in range(scenario_of_draw.size):
            s = scenario_of_draw[d]
            if exceed[s, i, 0] <= 0.0 or exceed[s, i, n_states - 1] >= 1.0:
                # a certain outcome (dry, or beyond every curve) needs no random number
                k = 0 if exceed[s, i, 0] <= 0.0 else n_states
                _add(town, districts, cells, d, g, c, k, w, severe, n_states)
            elif w == 1:
                # the rows are nested (non-increasing in k), so the state is the number
                # of curves above u: counted without branches
                u = rng.random()
                k = 0
                for j in range(n_states):
                    k += u < exceed[s, i, j]
                _add(town, districts, cells, d, g, c, k, 1, severe, n_states)
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
                    if m > 0:
                        _add(town, districts, cells, d, g, c, k, m, severe, n_states)


@numba.njit(cache=True, nogil=True, inline="always")
def _add(town, districts, cells, d, g, c, k, m, severe, n_states):
    """Count ``m`` buildings in state ``k`` in draw ``d`` (district ``g``, cell ``c``;
    -1: none)."""
    town[d, k] += m
    if g >= 0:
        districts[g, d, k] += m
    if c >= 0:
        cells[c, d, 0] += m * (k >= severe)
        cells[c, d, 1] += m * (k == n_states)


@dataclass(frozen=True)
class MonteCarlo:
    """The Monte Carlo of one assessment, shared by all its partitions.

    Buildings are simulated in fixed chunks of ``chunk_cells`` consecutive output cells
    (cells numbered 0..``n_cells``-1), each chunk with its own generator seeded by
    ``(seed, chunk)``; buildings off the output grid form one more group. The draws of the
    scenario (one per Monte Carlo draw) come from ``(seed, 0)``. So the counts depend on
    the inputs and the seed only, not on how the inventory is split into partitions: the
    Dask path and the serial path give identical ranges.

    ``scenario_weights``: (S,) summing to 1; ``severe``: the damage state counted per cell
    (the other per-cell count is DS = K, washed away).
    """

    scenario_weights: np.ndarray
    n_cells: int
    n_districts: int
    severe: int
    draws: int = 1000
    seed: int = 1993
    quantiles: tuple[float, float] = (0.05, 0.95)

    @property
    def chunk_cells(self) -> int:
        """Cells per chunk: bounds the per-draw cell counts held at once."""
        return max(1, CELL_CHUNK_ELEMENTS // (2 * self.draws))

    @property
    def n_chunks(self) -> int:
        return -(-self.n_cells // self.chunk_cells)

    def chunk_of(self, cell: np.ndarray) -> np.ndarray:
        """Chunk of each output cell index (-1 for -1: off the output grid)."""
        cell = np.asarray(cell, dtype=np.int64)
        return np.where(cell >= 0, cell // self.chunk_cells, -1)

    def scenario_of_draw(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 0])
        weights = np.asarray(self.scenario_weights, dtype=np.float64)
        return rng.choice(weights.size, size=self.draws, p=weights).astype(np.int64)

    def simulate(self, exceed: np.ndarray, weight: np.ndarray, district: np.ndarray,
                 cell: np.ndarray, chunks: range, off_grid: bool) -> dict[str, np.ndarray]:
        """Simulated damage counts of some buildings: those of ``chunks`` (whose cells lie
        in them) and, if ``off_grid``, those with cell -1.

        ``exceed``: (S, n, K) nested P(DS >= k) per scenario (no NaN rows); ``weight``:
        (n,) buildings per row; ``district``/``cell``: (n,) indices (-1 none). Returns
        ``town`` (draws, K+1) and ``districts`` (n_districts, draws, K+1) counts per
        state and draw, and ``cell_quantiles`` (cells of ``chunks``, 2 layers [DS >=
        severe, DS = K], 2 quantiles). Partial results of disjoint calls add up
        (:meth:`combine`).
        """
        exceed = np.asarray(exceed, dtype=np.float64)
        n_states = exceed.shape[2]
        weight = np.ascontiguousarray(weight, dtype=np.int64)
        district = np.ascontiguousarray(district, dtype=np.int64)
        cell = np.ascontiguousarray(cell, dtype=np.int64)
        scenario = self.scenario_of_draw()
        town = np.zeros((self.draws, n_states + 1), dtype=np.int64)
        districts = np.zeros((self.n_districts, self.draws, n_states + 1), dtype=np.int64)
        cc = self.chunk_cells
        first = chunks.start * cc
        last = min(chunks.stop * cc, self.n_cells) if len(chunks) else first
        cell_q = np.zeros((last - first, 2, 2))
        chunk = self.chunk_of(cell)
        order = np.argsort(chunk, kind="stable")
        sorted_chunk = chunk[order]
        for k in ([-1] if off_grid else []) + list(chunks):
            lo, hi = np.searchsorted(sorted_chunk, [k, k + 1])
            idx = order[lo:hi]
            c0 = max(k, 0) * cc
            c1 = min(c0 + cc, self.n_cells) if k >= 0 else c0
            cells = np.zeros((c1 - c0, self.draws, 2), dtype=np.int32)
            if idx.size:
                rng = np.random.default_rng([self.seed, 1] if k < 0 else [self.seed, 2, k])
                _simulate(rng, np.ascontiguousarray(exceed[:, idx]), weight[idx], scenario,
                          district[idx], cell[idx], c0, self.severe, town, districts, cells)
            if c1 > c0:
                q = np.quantile(cells, self.quantiles, axis=1, method=QUANTILE_METHOD)
                cell_q[c0 - first:c1 - first] = np.moveaxis(q, 0, -1)
        return {"town": town, "districts": districts, "cell_quantiles": cell_q}

    @staticmethod
    def combine(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The counts of the whole inventory from the partial results of partitions
        covering consecutive chunks, in chunk order."""
        return {"town": sum(p["town"] for p in parts),
                "districts": sum(p["districts"] for p in parts),
                "cell_quantiles": np.concatenate([p["cell_quantiles"] for p in parts])}


def count_ranges(counts: np.ndarray, quantiles: tuple[float, float] = (0.05, 0.95)
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Percentiles over draws of counts per state (axis -2 = draws, -1 = states) and of
    counts at or above each state: returns (per_state, at_least), each (..., 2, K+1)."""
    at_least = np.flip(np.cumsum(np.flip(counts, axis=-1), axis=-1), axis=-1)
    q_state = np.moveaxis(np.quantile(counts, quantiles, axis=-2, method=QUANTILE_METHOD), 0, -2)
    q_least = np.moveaxis(np.quantile(at_least, quantiles, axis=-2, method=QUANTILE_METHOD),
                          0, -2)
    return q_state, q_least
