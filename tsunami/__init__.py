"""Real-time tsunami inundation forecasting.

The public API follows the data flow: inputs (:class:`Region`, :class:`Scenario`) ->
model (:class:`Grid`, :class:`ShallowWaterModel`, :class:`NestedModel`) ->
:class:`Simulation` with callbacks (:class:`GaugeRecorder`) -> fields
(:func:`maxima_dataset`, xarray Datasets with units and CRS).
"""

__version__ = "0.1.0"

from tsunami.boundaries import Boundaries, IncidentWave, Open, Wall
from tsunami.errors import BlowUpError, InputError
from tsunami.fields import maxima_dataset
from tsunami.gauges import Gauge, GaugeRecorder
from tsunami.grid import Grid
from tsunami.model import ShallowWaterModel
from tsunami.nesting import NestedModel
from tsunami.region import Region
from tsunami.scenario import Scenario
from tsunami.simulation import Simulation

__all__ = [
    "BlowUpError",
    "Boundaries",
    "Gauge",
    "GaugeRecorder",
    "Grid",
    "IncidentWave",
    "InputError",
    "NestedModel",
    "Open",
    "Region",
    "Scenario",
    "ShallowWaterModel",
    "Simulation",
    "Wall",
    "__version__",
    "maxima_dataset",
]
