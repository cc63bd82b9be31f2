"""The real-time chain: feeds -> quality control -> triggers and alerts -> source
estimate -> forecast, driven unattended by the watch service.

:mod:`tsunami.realtime.stations` holds the station catalogue every stage shares.
"""
