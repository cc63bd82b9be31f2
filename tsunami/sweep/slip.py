"""Stochastic slip on a rectangular fault: a Karhunen-Loeve expansion of a lognormal field.

The method of LeVeque, Waagan, Gonzalez, Rim & Lin (2016, "Generating random earthquake
events for probabilistic tsunami hazard assessment", Pure Appl. Geophys. 173, 3671-3692,
doi:10.1007/s00024-016-1357-1):

1. the fault is cut into ``n_strike`` x ``n_dip`` equal subfaults;
2. the slip wanted has mean ``mu`` (the uniform slip of the moment, M0 / (rigidity x
   area)), standard deviation ``slip_cv x mu`` and correlation ``C_ij`` between subfaults
   from an autocorrelation function of the scaled distance
   ``r = sqrt((dx / a_x)^2 + (dz / a_z)^2)`` (dx along strike, dz down dip, between
   subfault centres);
3. slip = exp(G), G Gaussian with covariance ``log(slip_cv^2 C + 1)`` and mean
   ``log(mu) - diag / 2``: the lognormal slip then has exactly that mean, variance and
   correlation, and is positive everywhere;
4. G = mean + sum_k z_k sqrt(lambda_k) v_k over the eigenpairs (lambda_k, v_k) of its
   covariance (the Karhunen-Loeve expansion), z_k independent standard normals; the
   expansion may be truncated to the leading ``modes``, which carry the long-wavelength
   slip that matters most for a tsunami.

Autocorrelation: the von Karman function of Mai & Beroza (2002, "A spatial random field
model to characterize complexity in earthquake slip", JGR 107(B11), 2308,
doi:10.1029/2001JB000588), ``C(r) = r^H K_H(r) / (2^(H-1) Gamma(H))`` with K_H the
modified Bessel function of the second kind and H the Hurst exponent (H = 0.5 is the
exponential function). Their correlation lengths grow with the fault's length L and width
W (m): dip-slip a_x = 1100 + 0.31 L, a_z = 580 + 0.35 W; strike-slip a_x = 1860 + 0.34 L,
a_z = -390 + 0.44 W. The default H = 0.71 is 3 - D for their median fractal dimension of
slip D = 2.29. The coefficient of variation ``slip_cv`` (default 0.5) is a choice of the
study, not a value from either paper.

Moment: the sample mean of a realisation differs from ``mu`` by chance; every realisation
is rescaled to mean ``mu`` exactly, so with equal subfault areas and one rigidity its
seismic moment is the target's (as LeVeque et al. scale their realisations to the
magnitude wanted). Lengths in m, slip in m.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special

from tsunami.source.okada import FaultModel, Subfault
from tsunami.source.scaling import mechanism

METHOD = ("Karhunen-Loeve expansion of a lognormal random field (LeVeque et al. 2016, Pure "
          "Appl. Geophys. 173, 3671-3692) with von Karman correlation (Mai & Beroza 2002, "
          "JGR 107(B11), 2308)")


@dataclass(frozen=True)
class SlipField:
    """How stochastic slip is drawn (module doc).

    ``hurst``: Hurst exponent H of the von Karman function (0 < H <= 1.5); ``slip_cv``:
    standard deviation of slip over its mean; ``correlation_lengths``: (a_x along strike,
    a_z down dip) in m, default Mai & Beroza's regressions on the fault's size;
    ``subfaults``: (along strike, down dip) counts, default enough for two subfaults per
    correlation length (at least 4 x 3); ``modes``: Karhunen-Loeve terms kept (default
    all).
    """

    hurst: float = 0.71
    slip_cv: float = 0.5
    correlation_lengths: tuple[float, float] | None = None
    subfaults: tuple[int, int] | None = None
    modes: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.hurst <= 1.5:
            raise ValueError(f"hurst must be within (0, 1.5], got {self.hurst}")
        if not self.slip_cv > 0:
            raise ValueError(f"slip_cv must be positive, got {self.slip_cv}")
        if self.correlation_lengths is not None and min(self.correlation_lengths) <= 0:
            raise ValueError("correlation lengths must be positive")
        if self.subfaults is not None and min(self.subfaults) < 1:
            raise ValueError("subfault counts must be >= 1")
        if self.modes is not None and self.modes < 1:
            raise ValueError("modes must be >= 1")

    def lengths(self, length: float, width: float, rake: float) -> tuple[float, float]:
        """Correlation lengths (m) for a fault of ``length`` x ``width`` (m) and rake."""
        if self.correlation_lengths is not None:
            return self.correlation_lengths
        return correlation_lengths(length, width, rake)

    def counts(self, length: float, width: float, rake: float) -> tuple[int, int]:
        """Subfaults along strike and down dip."""
        if self.subfaults is not None:
            return self.subfaults
        a_x, a_z = self.lengths(length, width, rake)
        return max(4, math.ceil(2.0 * length / a_x)), max(3, math.ceil(2.0 * width / a_z))


def correlation_lengths(length: float, width: float, rake: float) -> tuple[float, float]:
    """Mai & Beroza (2002) von Karman correlation lengths (a_x, a_z) in m for a fault of
    ``length`` and ``width`` (m): their dip-slip regression for reverse and normal faults,
    the strike-slip one otherwise (classed by rake as Wells & Coppersmith do). Floored at
    a tenth of the fault's dimension (the strike-slip a_z is negative for W < 0.9 km)."""
    if mechanism(rake) == "strike_slip":
        a_x, a_z = 1860.0 + 0.34 * length, -390.0 + 0.44 * width
    else:
        a_x, a_z = 1100.0 + 0.31 * length, 580.0 + 0.35 * width
    return max(a_x, 0.1 * length), max(a_z, 0.1 * width)


def von_karman(r: np.ndarray, hurst: float) -> np.ndarray:
    """Von Karman autocorrelation of scaled distance ``r`` >= 0: 1 at r = 0, decaying
    as r^(H - 1/2) exp(-r) far away."""
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        value = r**hurst * special.kv(hurst, r) / (2.0 ** (hurst - 1.0) * special.gamma(hurst))
    return np.where(r > 0, np.nan_to_num(value, nan=0.0), 1.0)


class KarhunenLoeve:
    """The eigen-decomposition of the log-slip covariance on a fault's subfault lattice.

    Subfault centres sit at ``(i + 1/2) length / n_strike`` along strike and
    ``(k + 1/2) width / n_dip`` down dip; slip arrays are ``(n_dip, n_strike)``, row 0 at
    the top edge.
    """

    def __init__(self, n_strike: int, n_dip: int, length: float, width: float,
                 correlation: tuple[float, float], hurst: float, slip_cv: float,
                 modes: int | None = None) -> None:
        self.shape = (n_dip, n_strike)
        along = (np.arange(n_strike) + 0.5) * length / n_strike
        down = (np.arange(n_dip) + 0.5) * width / n_dip
        x, z = (a.ravel() for a in np.meshgrid(along, down))
        a_x, a_z = correlation
        r = np.hypot((x[:, None] - x[None, :]) / a_x, (z[:, None] - z[None, :]) / a_z)
        self.correlation = von_karman(r, hurst)
        covariance = np.log(slip_cv**2 * self.correlation + 1.0)
        self.log_variance = np.diag(covariance).copy()
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1][:modes]  # largest first
        # Round-off can leave the smallest eigenvalues slightly negative.
        self.eigenvalues = np.clip(eigenvalues[order], 0.0, None)
        self.eigenvectors = eigenvectors[:, order]

    @property
    def modes(self) -> int:
        return self.eigenvalues.size

    def sample(self, rng: np.random.Generator, mean_slip: float, count: int | None = None,
               preserve_moment: bool = True) -> np.ndarray:
        """Slip (m) of ``count`` realisations, ``(count, n_dip, n_strike)`` (or one
        ``(n_dip, n_strike)`` field without ``count``) of mean ``mean_slip``: exactly that
        mean per realisation with ``preserve_moment``, in expectation otherwise."""
        z = rng.standard_normal((1 if count is None else count, self.modes))
        log_mean = math.log(mean_slip) - 0.5 * self.log_variance
        log_slip = log_mean + (z * np.sqrt(self.eigenvalues)) @ self.eigenvectors.T
        slip = np.exp(log_slip)
        if preserve_moment:
            slip *= mean_slip / slip.mean(axis=1, keepdims=True)
        slip = slip.reshape(-1, *self.shape)
        return slip[0] if count is None else slip


@lru_cache(maxsize=32)
def _expansion(n_strike: int, n_dip: int, length: float, width: float,
               correlation: tuple[float, float], hurst: float, slip_cv: float,
               modes: int | None) -> KarhunenLoeve:
    return KarhunenLoeve(n_strike, n_dip, length, width, correlation, hurst, slip_cv, modes)


def stochastic_fault(fault: FaultModel, rng: np.random.Generator,
                     options: SlipField = SlipField()) -> FaultModel:
    """One realisation of stochastic slip on a one-rectangle fault (e.g. from
    :func:`tsunami.source.scaling.fault_from_alert`): the rectangle cut into subfaults
    whose slips average the rectangle's uniform slip (same moment). The metadata keep the
    fault's and add the method, its parameters and the mean and peak slip."""
    if len(fault.subfaults) != 1:
        raise ValueError(f"stochastic slip needs a one-rectangle fault, got "
                         f"{len(fault.subfaults)} subfaults")
    rectangle = fault.subfaults[0]
    length, width, rake = rectangle.length, rectangle.width, rectangle.rake
    n_strike, n_dip = options.counts(length, width, rake)
    a_x, a_z = options.lengths(length, width, rake)
    expansion = _expansion(n_strike, n_dip, length, width, (a_x, a_z), options.hurst,
                           options.slip_cv, options.modes)
    slip = expansion.sample(rng, rectangle.slip)
    # split() orders patches along strike first, from the top edge down: slip[k, i].
    patches: list[Subfault] = [dataclasses.replace(p, slip=float(s)) for p, s in
                               zip(rectangle.split(n_strike, n_dip), slip.ravel(), strict=True)]
    metadata = dict(fault.metadata)
    metadata.update({
        "model": f"stochastic slip: {METHOD}",
        "subfaults": f"{n_strike} along strike x {n_dip} down dip",
        "correlation_lengths_m": f"{a_x:.0f} along strike, {a_z:.0f} down dip",
        "hurst": options.hurst, "slip_cv": options.slip_cv,
        "modes": f"{expansion.modes} of {n_strike * n_dip}",
        "slip_m": float(slip.mean()), "max_slip_m": float(slip.max()),
    })
    return FaultModel(tuple(patches), metadata, fault.hypocentre)
