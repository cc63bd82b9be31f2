"""The real-time chain: feeds -> quality control -> triggers and alerts -> source
estimate -> forecast, driven unattended by the watch service.

- :mod:`tsunami.realtime.stations`: the station catalogue every stage shares.
- :mod:`tsunami.realtime.zone`: fault zones tiled into unit sources.
- :mod:`tsunami.realtime.database`: the unit-source database (Green's functions at the
  stations and forecast points, initial sea surfaces), built in parallel with dask.
- :mod:`tsunami.realtime.inversion`: slip from the records so far (NNLS + Tikhonov,
  L-curve), returning a :class:`~tsunami.realtime.estimate.SourceEstimate`.
"""
