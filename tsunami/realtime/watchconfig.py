"""The watch service's configuration file (TOML; README, "Running the watch service").

Paths are relative to the file. Every mistake is an :class:`~tsunami.errors.InputError`
naming the file and the field (``tsunami watch`` exits with status 2)::

    [watch]
    state = "state"                          # folder: service state and record store
    event_id = "{origin:%Y%m%dT%H%M%S}"      # fields: origin (UTC datetime), alert (its id)
    poll_s = 1.0
    same_event_s = 600.0                     # an alert within 10 min of an event's origin
                                             # (or before a gauge event's trigger) joins it
    revision_magnitude = 0.2                 # a revised alert re-runs forecast 1 when its
    revision_km = 20.0                       # magnitude or hypocentre moves this much

    [forecast]
    region = "grids/okushiri1993/region.toml"
    duration_s = 3600.0
    alert_duration_s = 1800.0                # forecast 1 simulates only this window (the
                                             # ten-minute budget); default duration_s
    database = "db/okushiri"                 # unit-source database (tsunami database build)
    stations = "grids/okushiri1993/stations_virtual.toml"
    outbox = "outbox"

    [feeds]
    folder = "incoming"                      # watched folder (optional)
    alerts = "alerts"                        # alert files dropped here (optional)
    replay = ["gauges/*.csv"]                # recorded files replayed at start (optional)
    replay_speed = 1.0                       # times real time; 0 = as fast as possible
    http_port = 8080                         # HTTP ingest (optional; needs http_tokens)
    http_tokens = "tokens.toml"

    [trigger]
    kind = "anomaly"                         # or "dart"
    threshold_m = 0.1
    stations = 1
    standby_s = 1800.0                       # no event open: the trigger looks at the last
                                             # 30 min (a trigger opens an event itself)
    origin_margin_s = 600.0                  # optional: origin = onset - this; default the
                                             # database's shortest travel time to the station
    rearm_s = 21600.0                        # the gauges alone open no event within 6 h of
                                             # the last event's origin (the tsunami rings on)

    [inversion]
    update_s = 120.0                         # a new inversion every 2 minutes of data
    last_s = 1800.0                          # no inversion after 30 minutes of records
    downgrade_after_s = 1200.0               # before 20 minutes of records an inversion
                                             # may raise the alert forecast, not lower it

    [ensemble]
    full_runs = 2                            # decisive members run with the full nest
    verify = 4                               # members per town checked on the database grid
    percentile_maps = [50, 84, 95]           # members mapped at these percentiles ([]: none)
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tsunami.config import Table, load_toml
from tsunami.errors import InputError
from tsunami.names import check_name
from tsunami.realtime.ensemble import EnsembleSettings


@dataclass(frozen=True)
class WatchConfig:
    """A loaded watch configuration (module doc); times in s, heights in m."""

    path: Path
    state: Path
    region: Path
    duration_s: float
    database: Path
    stations: Path
    outbox: Path
    event_id: str = "{origin:%Y%m%dT%H%M%S}"
    poll_s: float = 1.0
    same_event_s: float = 600.0
    revision_magnitude: float = 0.2
    revision_km: float = 20.0
    folder: Path | None = None
    alerts: Path | None = None
    replay: tuple[Path, ...] = ()
    replay_speed: float = 0.0
    replay_epoch: str | None = None
    http_port: int | None = None
    http_host: str = "127.0.0.1"
    http_tokens: Path | None = None
    trigger: str = "anomaly"
    threshold_m: float = 0.1
    trigger_stations: int = 1
    standby_s: float = 1800.0
    origin_margin_s: float | None = None
    rearm_s: float = 21600.0
    update_s: float = 120.0
    last_s: float = 1800.0
    pre_event_s: float = 3600.0
    supersede_fraction: float = 0.5
    #: Records (s after the origin) an inversion needs before its forecast may lower the
    #: alert forecast's heights (README, "No early downgrade"); before, the published
    #: fields are the envelope of both.
    downgrade_after_s: float = 1200.0
    #: Forecast 1's simulated window (s; None: ``duration_s``). README, "The ten-minute
    #: budget": a shorter window publishes sooner; the full duration follows.
    alert_duration_s: float | None = None
    ensemble: EnsembleSettings = field(default_factory=EnsembleSettings)

    @classmethod
    def load(cls, path: str | Path) -> WatchConfig:
        path = Path(path).resolve()
        root = Table(load_toml(path, "watch configuration"), path, "")
        root.check_keys({"watch", "forecast", "feeds", "trigger", "inversion", "ensemble"},
                        {"forecast"})
        watch = root.table("watch") or Table({}, path, "watch")
        watch.check_keys({"state", "event_id", "poll_s", "same_event_s", "revision_magnitude",
                          "revision_km"})
        forecast = root.table("forecast", required=True)
        forecast.check_keys({"region", "duration_s", "alert_duration_s", "database",
                             "stations", "outbox"},
                            {"region", "database", "stations", "outbox"})
        feeds = root.table("feeds") or Table({}, path, "feeds")
        feeds.check_keys({"folder", "alerts", "replay", "replay_speed", "replay_epoch",
                          "http_port", "http_host", "http_tokens"})
        trigger = root.table("trigger") or Table({}, path, "trigger")
        trigger.check_keys({"kind", "threshold_m", "stations", "standby_s", "origin_margin_s",
                            "rearm_s"})
        inversion = root.table("inversion") or Table({}, path, "inversion")
        inversion.check_keys({"update_s", "last_s", "pre_event_s", "supersede_fraction",
                              "downgrade_after_s"})
        ens = root.table("ensemble") or Table({}, path, "ensemble")
        ens.check_keys({"full_runs", "verify", "along_strike", "down_dip", "strike_offsets",
                        "dip_offsets", "magnitude_offsets", "saturation_magnitude",
                        "saturation_offsets", "size_sigmas", "default_depth_m",
                        "default_mechanism", "percentile_maps"})

        rule = watch.str("event_id", cls.event_id)
        try:
            check_name(rule.format(origin=datetime(2000, 1, 1, tzinfo=UTC), alert="x"), None,
                       "event_id")
        except (KeyError, IndexError, ValueError, InputError) as exc:
            raise watch.error("event_id", f"not a usable event id rule ({exc}); fields: "
                              "{origin:<strftime format>} and {alert}") from None

        def folder(t: Table, key: str, default: str | None) -> Path | None:
            value = t.str(key, default)
            if value is None:
                return None
            p = Path(value)
            return (p if p.is_absolute() else path.parent / p).resolve()

        replay = []
        value = feeds.data.get("replay", [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise feeds.error("replay", "expected a list of file names or patterns")
        for pattern in value:
            full = pattern if Path(pattern).is_absolute() else str(path.parent / pattern)
            found = sorted(glob.glob(full))
            if not found:
                raise feeds.error("replay", f"no file matches {pattern!r}")
            replay += [Path(f) for f in found]
        port = feeds.integer("http_port", None, minimum=1, maximum=65535)
        tokens = feeds.path("http_tokens", required=port is not None)

        def numbers(key: str, default: tuple[float, ...]) -> tuple[float, ...]:
            got = ens.numbers(key)
            return default if got is None else tuple(got)

        base = EnsembleSettings()
        mechanism = ens.numbers("default_mechanism", 3)
        values = dict(
            along_strike=numbers("along_strike", base.along_strike),
            down_dip=numbers("down_dip", base.down_dip),
            strike_offsets=numbers("strike_offsets", base.strike_offsets),
            dip_offsets=numbers("dip_offsets", base.dip_offsets),
            magnitude_offsets=numbers("magnitude_offsets", base.magnitude_offsets),
            saturation_magnitude=ens.number("saturation_magnitude",
                                            base.saturation_magnitude),
            saturation_offsets=numbers("saturation_offsets", base.saturation_offsets),
            size_sigmas=numbers("size_sigmas", base.size_sigmas),
            percentile_maps=numbers("percentile_maps", base.percentile_maps),
            full_runs=ens.integer("full_runs", base.full_runs, minimum=1, maximum=20),
            verify=ens.integer("verify", base.verify, minimum=1, maximum=50),
            default_depth_m=ens.number("default_depth_m", base.default_depth_m,
                                       minimum=0.0, maximum=700e3),
            default_mechanism=tuple(mechanism) if mechanism else base.default_mechanism)
        try:
            ensemble = EnsembleSettings(**values)
        except ValueError as exc:
            raise ens.error(None, str(exc)) from None
        for key in ("along_strike", "down_dip", "strike_offsets", "dip_offsets",
                    "magnitude_offsets", "size_sigmas"):
            if ens.has(key) and not ens.numbers(key):
                raise ens.error(key, "needs at least one value")

        duration = forecast.number("duration_s", 3600.0, minimum=60.0, maximum=86400.0)
        window = forecast.number("alert_duration_s", None, minimum=60.0, maximum=86400.0)
        if window is not None and window > duration:
            raise forecast.error("alert_duration_s", f"forecast 1's window ({window:g} s) "
                                 f"cannot be longer than duration_s ({duration:g} s)")
        return cls(
            path=path,
            state=folder(watch, "state", "state"),
            region=forecast.path("region"),
            duration_s=duration,
            alert_duration_s=window,
            database=forecast.path("database"),
            stations=forecast.path("stations"),
            outbox=folder(forecast, "outbox", None),
            event_id=rule,
            poll_s=watch.number("poll_s", 1.0, minimum=0.01, maximum=60.0),
            same_event_s=watch.number("same_event_s", 600.0, minimum=0.0, maximum=7200.0),
            revision_magnitude=watch.number("revision_magnitude", 0.2, minimum=0.0,
                                            maximum=3.0),
            revision_km=watch.number("revision_km", 20.0, minimum=0.0),
            folder=folder(feeds, "folder", None),
            alerts=folder(feeds, "alerts", None),
            replay=tuple(replay),
            replay_speed=feeds.number("replay_speed", 0.0, minimum=0.0),
            replay_epoch=feeds.str("replay_epoch"),
            http_port=port,
            http_host=feeds.str("http_host", "127.0.0.1"),
            http_tokens=tokens,
            trigger=trigger.str("kind", "anomaly", choices={"anomaly", "dart"}),
            threshold_m=trigger.number("threshold_m", 0.1, minimum=0.005, maximum=10.0),
            trigger_stations=trigger.integer("stations", 1, minimum=1),
            standby_s=trigger.number("standby_s", 1800.0, minimum=60.0, maximum=86400.0),
            origin_margin_s=trigger.number("origin_margin_s", None, minimum=0.0,
                                           maximum=86400.0),
            rearm_s=trigger.number("rearm_s", 21600.0, minimum=0.0, maximum=7 * 86400.0),
            update_s=inversion.number("update_s", 120.0, minimum=15.0),
            last_s=inversion.number("last_s", 1800.0, minimum=60.0),
            pre_event_s=inversion.number("pre_event_s", 3600.0, minimum=0.0),
            supersede_fraction=inversion.number("supersede_fraction", 0.5, minimum=0.0,
                                                maximum=1.0),
            downgrade_after_s=inversion.number("downgrade_after_s", 1200.0, minimum=0.0,
                                               maximum=86400.0),
            ensemble=ensemble)

    @property
    def alert_window_s(self) -> float:
        """Seconds after the origin that forecast 1 (the alert ensemble) simulates."""
        return self.duration_s if self.alert_duration_s is None else self.alert_duration_s
