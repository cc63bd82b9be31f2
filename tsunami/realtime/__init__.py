"""The real-time chain: feeds -> quality control -> triggers and alerts -> source
estimate -> forecast, driven unattended by the watch service.

- :mod:`~tsunami.realtime.stations`: the station catalogue every stage shares;
- :mod:`~tsunami.realtime.records`: the record model (one sample, time in ns UTC, flags);
- :mod:`~tsunami.realtime.formats`: recorded file formats (CSV, NDBC DART, two-column);
- :mod:`~tsunami.realtime.store`: the SQLite record store (persist before use; what each
  forecast used);
- :mod:`~tsunami.realtime.feeds`: replay and the watched folder;
  :mod:`~tsunami.realtime.ingest`: the HTTP ingest endpoint;
- :mod:`~tsunami.realtime.qc`: quality control to a clean de-tided anomaly;
- :mod:`~tsunami.realtime.triggers`: the DART detector and the anomaly trigger;
- :mod:`~tsunami.realtime.alerts`: earthquake alerts (JSON, QuakeML, JMA XML);
- :mod:`~tsunami.realtime.zone`: fault zones tiled into unit sources;
- :mod:`~tsunami.realtime.database`: the unit-source database (Green's functions at the
  stations and forecast points, initial sea surfaces), built in parallel with dask;
- :mod:`~tsunami.realtime.inversion`: slip from the records so far (NNLS + Tikhonov,
  L-curve), returning a :class:`~tsunami.realtime.estimate.SourceEstimate`;
- :mod:`~tsunami.realtime.commands`: ``tsunami feeds ...``, ``database ...``, ``invert``.
"""
