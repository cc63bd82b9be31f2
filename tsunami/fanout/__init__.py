"""Town grids fanned out across Dask workers (one-way from the region, two-way inside a
town); see :mod:`tsunami.fanout.run` and :mod:`tsunami.fanout.forcing`."""

from tsunami.fanout.forcing import BoundaryRecorder, BoundaryRecording, RecordedParent, Window
from tsunami.fanout.run import (
    FanoutReport,
    RegionalResult,
    TownResult,
    TownTask,
    regional_stage,
    run_fanout,
    town_of_grids,
    town_stage,
    town_subtrees,
)

__all__ = [
    "BoundaryRecorder",
    "BoundaryRecording",
    "FanoutReport",
    "RecordedParent",
    "RegionalResult",
    "TownResult",
    "TownTask",
    "Window",
    "regional_stage",
    "run_fanout",
    "town_of_grids",
    "town_stage",
    "town_subtrees",
]
