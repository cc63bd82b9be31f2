"""A fault from an earthquake alert: magnitude-area scaling laws and uniform slip.

An alert gives a hypocentre, a moment magnitude Mw and a mechanism (strike, dip, rake).
:func:`fault_from_alert` turns it into one rectangular :class:`~tsunami.source.okada.
Subfault` of uniform slip:

- length L and width W from a published regression ``log10(X / km) = a + b Mw``:
  Strasser et al. (2010, Seismol. Res. Lett. 81(6), 941-950, Table 2) for subduction
  interface (and intraslab) events, Wells & Coppersmith (1994, BSSA 84(4), 974-1002,
  Table 2A: subsurface rupture length RLD and downdip rupture width RW) for the others,
  by mechanism;
- slip D from the seismic moment, M0 = mu L W D, with M0 from Mw by Hanks & Kanamori
  (1979) in the IASPEI form Mw = (2/3)(log10 M0 - 9.1), M0 in N m, and the law's
  rigidity mu (40 GPa for the subduction-zone laws, a value commonly taken for interface
  events; 30 GPa for crustal faults);
- the hypocentre at the fault's centroid. A fault too wide for that depth would rise
  above the sea floor; it is then slid down dip in its own plane (so the plane still
  passes through the hypocentre) until its top edge is ``min_top_depth`` (1 km) deep.

Default law (:func:`default_law`): a thrust (rake within 45...135 degrees) dipping less
than 35 degrees is taken as a subduction interface event (Strasser 2010 interface);
everything else uses Wells & Coppersmith 1994 for its slip type, classed by rake as they
do: within 45 degrees of 0 or 180 strike-slip, otherwise reverse (rake > 0) or normal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tsunami.source.okada import FaultModel, Subfault, plane_point

#: Rigidity (Pa) assumed for subduction-zone events and for crustal events.
SUBDUCTION_RIGIDITY = 4.0e10
CRUSTAL_RIGIDITY = 3.0e10
#: Shallowest top edge (m below the sea floor) of a fault placed from an alert.
MIN_TOP_DEPTH = 1000.0


@dataclass(frozen=True)
class ScalingLaw:
    """A magnitude-size regression: log10(L / km) = a_L + b_L Mw, log10(W / km) = a_W +
    b_W Mw, with standard deviations (log10 units) and the rigidity (Pa) used for slip."""

    name: str
    citation: str
    length: tuple[float, float]
    width: tuple[float, float]
    sigma_length: float
    sigma_width: float
    rigidity: float

    def length_m(self, magnitude: float) -> float:
        """Median rupture length (m) for moment magnitude ``magnitude``."""
        return 1e3 * 10 ** (self.length[0] + self.length[1] * magnitude)

    def width_m(self, magnitude: float) -> float:
        """Median rupture width (m) for moment magnitude ``magnitude``."""
        return 1e3 * 10 ** (self.width[0] + self.width[1] * magnitude)

    def metadata(self) -> dict[str, str | float]:
        return {
            "law": self.name, "law_citation": self.citation,
            "law_length": f"log10(L/km) = {self.length[0]:g} + {self.length[1]:g} Mw "
                          f"(sigma {self.sigma_length:g})",
            "law_width": f"log10(W/km) = {self.width[0]:g} + {self.width[1]:g} Mw "
                         f"(sigma {self.sigma_width:g})",
        }


_STRASSER = "Strasser, Arango & Bommer (2010), Seismol. Res. Lett. 81(6), 941-950, Table 2"
_WC = "Wells & Coppersmith (1994), BSSA 84(4), 974-1002, Table 2A (RLD, RW)"

#: The laws by name.
LAWS: dict[str, ScalingLaw] = {law.name: law for law in (
    ScalingLaw("strasser2010_interface", f"{_STRASSER}, interface", (-2.477, 0.585),
               (-0.882, 0.351), 0.180, 0.173, SUBDUCTION_RIGIDITY),
    ScalingLaw("strasser2010_intraslab", f"{_STRASSER}, intraslab", (-2.350, 0.562),
               (-1.058, 0.356), 0.146, 0.067, SUBDUCTION_RIGIDITY),
    ScalingLaw("wells_coppersmith1994_strike_slip", f"{_WC}, strike-slip", (-2.57, 0.62),
               (-0.76, 0.27), 0.15, 0.14, CRUSTAL_RIGIDITY),
    ScalingLaw("wells_coppersmith1994_reverse", f"{_WC}, reverse", (-2.42, 0.58),
               (-1.61, 0.41), 0.16, 0.15, CRUSTAL_RIGIDITY),
    ScalingLaw("wells_coppersmith1994_normal", f"{_WC}, normal", (-1.88, 0.50),
               (-1.14, 0.35), 0.17, 0.12, CRUSTAL_RIGIDITY),
    ScalingLaw("wells_coppersmith1994_all", f"{_WC}, all slip types", (-2.44, 0.59),
               (-1.01, 0.32), 0.16, 0.15, CRUSTAL_RIGIDITY),
)}


def moment_from_magnitude(magnitude: float) -> float:
    """Seismic moment M0 (N m) of moment magnitude Mw: 10^(1.5 Mw + 9.1)."""
    return 10 ** (1.5 * magnitude + 9.1)


def magnitude_from_moment(moment: float) -> float:
    """Moment magnitude Mw = (2/3)(log10 M0 - 9.1), M0 in N m."""
    return (2.0 / 3.0) * (math.log10(moment) - 9.1)


def normalised_rake(rake: float) -> float:
    """Rake in (-180, 180] degrees."""
    r = (rake + 180.0) % 360.0 - 180.0
    return 180.0 if r == -180.0 else r


def mechanism(rake: float) -> str:
    """Wells & Coppersmith's slip type: "strike_slip", "reverse" or "normal"."""
    r = normalised_rake(rake)
    if abs(r) <= 45.0 or abs(r) >= 135.0:
        return "strike_slip"
    return "reverse" if r > 0 else "normal"


def default_law(dip: float, rake: float) -> str:
    """The law used when none is named: shallow-dipping thrusts (rake 45...135, dip < 35
    degrees) are subduction interface events; otherwise Wells & Coppersmith by slip type."""
    r = normalised_rake(rake)
    if 45.0 <= r <= 135.0 and dip < 35.0:
        return "strasser2010_interface"
    return f"wells_coppersmith1994_{mechanism(rake)}"


def fault_from_alert(longitude: float, latitude: float, depth: float, magnitude: float,
                     strike: float, dip: float, rake: float, law: str | None = None,
                     rigidity: float | None = None,
                     min_top_depth: float = MIN_TOP_DEPTH) -> FaultModel:
    """One uniform-slip rectangle for an earthquake alert.

    ``longitude``, ``latitude`` (deg), ``depth`` (m) of the hypocentre; ``magnitude`` Mw;
    ``strike``, ``dip`` (0 < dip <= 90), ``rake`` (deg) of the chosen nodal plane; ``law``
    a name in :data:`LAWS` (default :func:`default_law`); ``rigidity`` (Pa) overrides
    the law's. The hypocentre is the centroid unless that puts the top edge shallower
    than ``min_top_depth`` (m), module doc. The metadata name the law, its coefficients
    and citation, and the resulting size, slip and moment.
    """
    if law is None:
        law = default_law(dip, rake)
    if law not in LAWS:
        raise ValueError(f"unknown scaling law {law!r}; expected one of {sorted(LAWS)}")
    if not 0.0 < dip <= 90.0:
        raise ValueError(f"dip must be within (0, 90] degrees, got {dip}")
    if depth < 0 or min_top_depth < 0:
        raise ValueError("depths must be >= 0")
    scaling = LAWS[law]
    mu = scaling.rigidity if rigidity is None else float(rigidity)
    if not mu > 0:
        raise ValueError(f"rigidity must be positive, got {mu}")
    length, width = scaling.length_m(magnitude), scaling.width_m(magnitude)
    moment = moment_from_magnitude(magnitude)
    slip = moment / (mu * length * width)
    sin_dip = math.sin(math.radians(dip))
    # Hypocentre at the centroid, unless the top edge would then be shallower than
    # min_top_depth: slide the rectangle down dip in its own plane (the hypocentre stays
    # on the fault, up dip of the centroid; above the top edge only if the hypocentre is
    # itself shallower than min_top_depth).
    shift = max(0.0, (min_top_depth - (depth - 0.5 * width * sin_dip)) / sin_dip)
    lon, lat, top = plane_point(longitude, latitude, depth, strike, dip, 0.0,
                                -(0.5 * width - shift))
    fault = Subfault(lon, lat, max(top, 0.0), strike, dip, rake, slip, length, width)
    metadata: dict[str, str | float] = {
        **scaling.metadata(), "magnitude": magnitude, "moment_Nm": moment,
        "rigidity_Pa": mu, "length_m": length, "width_m": width, "slip_m": slip,
        "top_depth_m": fault.depth,
        "hypocentre": f"longitude {longitude:.4f}, latitude {latitude:.4f}, depth "
                      f"{depth / 1e3:.1f} km",
        "placement": "hypocentre at the centroid" if shift == 0 else
                     f"slid {shift / 1e3:.1f} km down dip from the hypocentre-centred "
                     f"position to keep the top edge {min_top_depth / 1e3:g} km deep",
    }
    return FaultModel((fault,), metadata, (longitude, latitude, depth))
