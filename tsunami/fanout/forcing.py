"""A town's boundary forcing: recorded on the region's grid, replayed to the town's nest.

Where a town's sub-tree of nested grids meets the regional grid above it (its *parent*),
the two-way nest drives the sub-tree's outermost grid with the parent's face fluxes
along its edges (:meth:`tsunami.nesting.Coupling.parent_edges`), interpolated in time
between the parent's steps. :class:`BoundaryRecorder` keeps exactly what that method
reads, at every step of the parent: the volume fluxes M and N (m2/s) on the faces along
the four edges and, for schemes that need it, the surface elevation eta (m) and water
depth (m) of the parent cells just outside them. :class:`RecordedParent` plays the
record back as a stand-in parent grid that covers only the town's block and a ring of
two cells around it, so the town's nest runs anywhere (a Dask worker) with the coupling
code of a two-way run, one-way from the region: nothing the town does flows back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tsunami.grid import Grid
from tsunami.model import ShallowWaterModel

#: Parent cells kept on every side of a town's block (the nest needs two to spare).
MARGIN = 2


@dataclass(frozen=True)
class Window:
    """Where a town's outermost grid sits in its parent: the block of parent cells it
    covers (``row0``, ``col0``, ``rows``, ``cols``) and the parent's lattice."""

    parent: Grid
    row0: int
    col0: int
    rows: int
    cols: int

    @classmethod
    def of(cls, pg: Grid, cg: Grid, ratio: int) -> Window:
        """Where child grid ``cg`` (``ratio`` times finer) sits in parent grid ``pg``."""
        return cls(pg, round((cg.y0 - pg.y0) / pg.dy), round((cg.x0 - pg.x0) / pg.dx),
                   cg.ny // ratio, cg.nx // ratio)

    def strips(self) -> dict[str, tuple]:
        """Index expressions, in the parent's arrays, of what the coupling reads: keys
        ``M_west`` ... ``N_north`` (faces along the edges, one extra at each end) and
        ``eta_west`` ... (cells just outside the edges, one extra at each end)."""
        j0, i0 = self.row0, self.col0
        j1, i1 = j0 + self.rows, i0 + self.cols
        rows, cols = slice(j0 - 1, j1 + 1), slice(i0 - 1, i1 + 1)
        return {"M_west": (rows, i0), "M_east": (rows, i1),
                "N_south": (j0, cols), "N_north": (j1, cols),
                "eta_west": (rows, i0 - 1), "eta_east": (rows, i1),
                "eta_south": (j0 - 1, cols), "eta_north": (j1, cols)}

    def local(self) -> Window:
        """The same block in the stand-in parent's own arrays (MARGIN cells around it)."""
        pg = self.parent
        grid = Grid(nx=self.cols + 2 * MARGIN, ny=self.rows + 2 * MARGIN,
                    x0=pg.x0 + (self.col0 - MARGIN) * pg.dx,
                    y0=pg.y0 + (self.row0 - MARGIN) * pg.dy, dx=pg.dx, dy=pg.dy,
                    crs=pg.crs, name=pg.name, coriolis=pg.coriolis)
        return Window(grid, MARGIN, MARGIN, self.rows, self.cols)

    def cut(self, array: np.ndarray, faces: tuple[int, int] = (0, 0)) -> np.ndarray:
        """The parent's ``array`` over the stand-in's cells (``faces``: extra rows and
        columns of a face array)."""
        j, i = self.row0 - MARGIN, self.col0 - MARGIN
        return array[j:j + self.rows + 2 * MARGIN + faces[0],
                     i:i + self.cols + 2 * MARGIN + faces[1]]


@dataclass
class BoundaryRecording:
    """The parent's state along a town's edges at its initial state and after each of
    its steps: ``frames[k]`` holds the strips of :meth:`Window.strips` (in that order,
    concatenated) at time ``times[k]`` (s); ``dt[k]`` (s) is the parent's step that led
    to frame k (``dt[0]``: its step before the run, not yet fixed by the nest)."""

    window: Window
    parent_name: str
    dtype: np.dtype
    lengths: dict[str, int]
    dry_depth: float  # the parent's (m)
    scheme: str  # the parent's numerical scheme
    still_depth: np.ndarray  # the parent's still depth over the stand-in's cells (m)
    frames: list[np.ndarray] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    dt: list[float] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return len(self.frames) - 1

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self.frames)


class BoundaryRecorder:
    """Records a :class:`BoundaryRecording` of ``parent`` for each town window; hook it
    into :attr:`tsunami.nesting.NestedModel.after_step` (it records the initial state
    when created)."""

    def __init__(self, parent: ShallowWaterModel, windows: dict[str, Window]) -> None:
        self.parent = parent
        self.strips = {name: w.strips() for name, w in windows.items()}
        self.recordings = {}
        for name, w in windows.items():
            lengths = {key: int(np.asarray(self._array(key)[where]).size)
                       for key, where in self.strips[name].items()}
            self.recordings[name] = BoundaryRecording(
                w, parent.grid.name, parent.dtype, lengths, parent.dry_depth,
                getattr(parent, "scheme", "leapfrog"),
                np.array(w.cut(parent.h), dtype=np.float64))
        self._record()

    def _array(self, key: str) -> np.ndarray:
        p = self.parent
        return {"M": p.M, "N": p.N, "eta": p.eta}[key.split("_")[0]]

    def _record(self) -> None:
        p = self.parent
        for name, strips in self.strips.items():
            parts = [self._array(key)[where] for key, where in strips.items()]
            parts += [p.eta[where] + p.h[where] for key, where in strips.items()
                      if key.startswith("eta")]
            rec = self.recordings[name]
            rec.frames.append(np.concatenate(parts).astype(p.dtype))
            rec.times.append(p.time)
            rec.dt.append(p.dt)

    def __call__(self, model: ShallowWaterModel) -> None:
        if model is self.parent:
            self._record()


class RecordedParent:
    """A stand-in for a town's parent grid that replays a :class:`BoundaryRecording`.

    It holds the parent's arrays over the town's block and a ring of ``MARGIN`` cells
    (so :class:`tsunami.nesting.NestedModel` aligns the town's grids to it as to the real
    parent), and each :meth:`step` loads the next recorded frame into the strips the
    coupling reads. What the town feeds back lands in the block's interior and is
    ignored: the forcing is one-way.
    """

    def __init__(self, recording: BoundaryRecording) -> None:
        self.recording = recording
        self.scheme = recording.scheme  # the coupling times its flux levels by it
        self.window = recording.window.local()
        self.grid = self.window.parent
        self.dtype = np.dtype(recording.dtype)
        self.h = recording.still_depth.astype(self.dtype)
        ny, nx = self.grid.shape
        self.eta = np.maximum(np.zeros((ny, nx)), -self.h).astype(self.dtype)
        self._depth = self.eta + self.h
        self.M = np.zeros((ny, nx + 1), self.dtype)
        self.N = np.zeros((ny + 1, nx), self.dtype)
        # Cell discharges a finite-volume parent takes back from its child (discarded).
        self.qx = np.zeros((ny, nx), self.dtype)
        self.qy = np.zeros((ny, nx), self.dtype)
        self.dry_depth = recording.dry_depth
        self.iteration = 0
        self.time = recording.times[0]
        self._dt = recording.dt[min(1, recording.steps)]
        self._load(0)

    @property
    def dt(self) -> float:
        return self._dt

    @dt.setter
    def dt(self, value: float) -> None:  # the nest re-sets its root's step; keep the record's
        pass

    @property
    def depth(self) -> np.ndarray:
        return self._depth

    def _load(self, k: int) -> None:
        frame = self.recording.frames[k]
        arrays = {"M": self.M, "N": self.N, "eta": self.eta}
        start = 0
        strips = self.window.strips()
        for key, where in strips.items():
            n = self.recording.lengths[key]
            arrays[key.split("_")[0]][where] = frame[start:start + n]
            start += n
        for key, where in strips.items():
            if key.startswith("eta"):
                n = self.recording.lengths[key]
                self._depth[where] = frame[start:start + n]
                start += n

    def step(self) -> None:
        k = self.iteration + 1
        if k > self.recording.steps:
            raise RuntimeError(f"grid {self.grid.name!r}: the recorded boundary forcing ends "
                               f"at t = {self.recording.times[-1]:g} s")
        self._dt = self.recording.dt[k]
        self._load(k)
        self.time = self.recording.times[k]
        self.iteration = k

    def state_changed(self, rows: slice = slice(None), cols: slice = slice(None)) -> None:
        """Nothing derived to refresh (the hook a nest's feedback calls on a parent)."""

    def reset_depth(self, depth: np.ndarray) -> None:
        """Keep the recorded still depth: the town's grids, whose mean the nest would set
        under them, never feed back (one-way)."""

    def _record_initial_maxima(self) -> None:
        """No maxima kept (the nest calls this on every parent after an initial state)."""

    def check_health(self, ignore: np.ndarray | None = None) -> None:
        """Nothing to check: the recorded values were checked in the regional run."""

    def stable_time_step(self) -> float:
        return self._dt
