"""HTTP ingest endpoint: gauge operators POST JSON batches of samples (aiohttp server).

``POST /v1/records`` with ``Authorization: Bearer <token>`` and ``Content-Type:
application/json``::

    {"records": [{"station": "P02", "time": "2011-03-11T05:46:24Z", "value": 4.73,
                  "unit": "m"}, ...]}

``time`` is ISO 8601 with a zone, or integer ns since the epoch (UTC); ``value`` a number
or null (missing sample); ``unit`` optional (default ``m``; pressure units are
converted by QC); ``kind``, if given, must match the station catalogue. The client's
name (from its token) becomes the records' ``source``.

Answers: 200 ``{"received", "inserted", "duplicates", "conflicts", "last_seq"}`` only
after the batch is committed to the store (a client that got 200 may forget the batch);
401 without a valid token; 413 above ``max_body_bytes`` or ``max_records``; 415 for
another content type; 429 (with ``Retry-After``) above the client's rate; 400 for bad
JSON or bad records, listing up to 20 errors as ``records[i].field: reason`` (the whole
batch is refused, so a client never has to work out which part was taken). Refused
requests are logged and kept in the store's problem log. ``GET /v1/health`` (no token)
answers the store's record count.

Tokens come from a TOML file ``[clients]`` mapping client names to tokens of at least 16
characters (keep it readable only by the service's user); they are compared in constant
time.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tsunami.config import Table, load_toml
from tsunami.errors import InputError
from tsunami.realtime.formats import Problem
from tsunami.realtime.records import UNITS, Flag, Record, to_ns
from tsunami.realtime.stations import STATION_ID, StationCatalogue
from tsunami.realtime.store import RecordStore

log = logging.getLogger(__name__)
MIN_TOKEN = 16


@dataclass(frozen=True)
class IngestConfig:
    """Endpoint limits: body size (bytes), records per request, and per-client rate (a
    token bucket: ``rate_per_s`` requests per second sustained, bursts of ``burst``)."""

    tokens: dict[str, str]  # token -> client name
    max_body_bytes: int = 1_000_000
    max_records: int = 20_000
    rate_per_s: float = 10.0
    burst: int = 20


def load_tokens(path: str | Path) -> dict[str, str]:
    """token -> client name from a TOML file ``[clients] name = "token"``."""
    path = Path(path)
    root = Table(load_toml(path, "ingest tokens"), path, "")
    root.check_keys({"clients"}, {"clients"})
    clients = root.table("clients", required=True)
    tokens: dict[str, str] = {}
    for name, token in clients.data.items():
        if not STATION_ID.match(name):
            raise clients.error(name, "client names are letters, digits, '_', '.', '-'")
        if not isinstance(token, str) or len(token) < MIN_TOKEN:
            raise clients.error(name, f"token must be text of at least {MIN_TOKEN} characters")
        if token in tokens:
            raise clients.error(name, f"same token as client {tokens[token]!r}")
        tokens[token] = name
    if not tokens:
        raise InputError(path, "clients", "no client: the endpoint would refuse everyone")
    return tokens


@dataclass
class _Bucket:
    tokens: float
    stamp: float = field(default_factory=time.monotonic)


class RateLimiter:
    """Token buckets by key (client name, or remote address before authentication)."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate, self.burst = rate_per_s, burst
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, key: str) -> float:
        """0 if a request may go now, else the seconds to wait."""
        now = time.monotonic()
        b = self._buckets.setdefault(key, _Bucket(float(self.burst), now))
        b.tokens = min(self.burst, b.tokens + (now - b.stamp) * self.rate)
        b.stamp = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / self.rate


def _error(status: int, message: str, details: list[str] | None = None,
           headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": message, **({"details": details} if details else {})}
    return web.json_response(body, status=status, headers=headers)


def make_app(store: RecordStore, catalogue: StationCatalogue, config: IngestConfig,
             on_records: Callable[[list[Record]], object] | None = None) -> web.Application:
    """The aiohttp application (run it with :func:`serve` or any aiohttp runner).
    ``on_records`` gets each batch's new records after the commit, in the event loop:
    keep it short (hand the work to a queue)."""
    limiter = RateLimiter(config.rate_per_s, config.burst)
    anonymous = RateLimiter(config.rate_per_s, config.burst)

    def refuse(source: str, status: int, message: str, details=None, headers=None,
               text: str = "") -> web.Response:
        log.warning("ingest refused (%s) from %s: %s", status, source, message)
        store.log_problems([Problem(source, None, f"HTTP {status}: {message}"
                                    + (f" ({'; '.join(details[:5])})" if details else ""),
                                    text)])
        return _error(status, message, details, headers)

    async def records(request: web.Request) -> web.Response:
        remote = request.remote or "unknown"
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        client = None
        if scheme.lower() == "bearer" and token:
            for known, name in config.tokens.items():
                if hmac.compare_digest(known.encode(), token.strip().encode()):
                    client = name
        if client is None:
            wait = anonymous.allow(remote)
            if wait:
                return _error(429, "too many requests", headers={
                    "Retry-After": str(math.ceil(wait))})
            return refuse(f"http:{remote}", 401, "missing or invalid bearer token",
                          headers={"WWW-Authenticate": 'Bearer realm="tsunami-ingest"'})
        source = f"http:{client}"
        wait = limiter.allow(client)
        if wait:  # logged, not stored: a flood must not turn into database writes
            log.warning("ingest refused (429) from %s: rate limit", source)
            return _error(429, f"rate limit of {config.rate_per_s:g} requests/s exceeded",
                          headers={"Retry-After": str(math.ceil(wait))})
        if request.content_length is not None and request.content_length > config.max_body_bytes:
            return refuse(source, 413, f"body larger than {config.max_body_bytes} bytes")
        if request.content_type != "application/json":
            return refuse(source, 415, "Content-Type must be application/json")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return refuse(source, 413, f"body larger than {config.max_body_bytes} bytes")
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return refuse(source, 400, f"malformed JSON: {exc}", text=body[:200].decode(
                "utf-8", "replace"))
        batch, errors = _validate(doc, catalogue, source, config.max_records)
        if errors == ["too many"]:
            return refuse(source, 413, f"more than {config.max_records} records")
        if errors:
            return refuse(source, 400, f"{len(errors)} invalid record(s); batch refused",
                          errors[:20])
        result = await asyncio.get_running_loop().run_in_executor(None, store.insert, batch)
        if result.inserted and on_records is not None:
            on_records(result.inserted)
        return web.json_response({"received": len(batch), "inserted": len(result.inserted),
                                  "duplicates": result.duplicates,
                                  "conflicts": result.conflicts, "last_seq": result.last_seq})

    async def health(request: web.Request) -> web.Response:
        count = await asyncio.get_running_loop().run_in_executor(None, store.count)
        return web.json_response({"status": "ok", "records": count})

    app = web.Application(client_max_size=config.max_body_bytes)
    app.router.add_post("/v1/records", records)
    app.router.add_get("/v1/health", health)
    return app


def _validate(doc, catalogue: StationCatalogue, source: str, max_records: int
              ) -> tuple[list[Record], list[str]]:
    """Records of a request body, or the reasons it is refused."""
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        return [], ['body must be an object {"records": [...]}']
    items = doc["records"]
    if len(items) > max_records:
        return [], ["too many"]
    out: list[Record] = []
    errors: list[str] = []
    for i, item in enumerate(items):
        where = f"records[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: expected an object")
            continue
        unknown = set(item) - {"station", "time", "value", "unit", "kind"}
        if unknown:
            errors.append(f"{where}: unknown field(s) {sorted(unknown)}")
            continue
        station = item.get("station")
        if not isinstance(station, str) or station not in catalogue:
            errors.append(f"{where}.station: {station!r} is not a catalogue station")
            continue
        kind = catalogue[station].kind
        if item.get("kind", kind) != kind:
            errors.append(f"{where}.kind: {item['kind']!r} but the catalogue says {kind!r}")
            continue
        t = item.get("time")
        try:
            if isinstance(t, bool) or not isinstance(t, int | str):
                raise ValueError("expected ISO 8601 text with a zone or integer ns")
            time_ns = to_ns(t)
            if not 0 < time_ns < 2**62:
                raise ValueError("outside 1970..2116")
        except ValueError as exc:
            errors.append(f"{where}.time: {exc}")
            continue
        value = item.get("value")
        if value is None:
            value, flags = math.nan, int(Flag.MISSING)
        elif isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            errors.append(f"{where}.value: expected a finite number or null, got {value!r}")
            continue
        else:
            value, flags = float(value), 0
        unit = item.get("unit", "m")
        if unit not in UNITS:
            errors.append(f"{where}.unit: {unit!r} is not one of {list(UNITS)}")
            continue
        out.append(Record(station, time_ns, value, unit, kind, source, flags))
    return out, errors


async def serve(store: RecordStore, catalogue: StationCatalogue, config: IngestConfig,
                host: str = "127.0.0.1", port: int = 8080,
                on_records: Callable[[list[Record]], object] | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (or the task is cancelled)."""
    runner = web.AppRunner(make_app(store, catalogue, config, on_records), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("ingest endpoint on http://%s:%s/v1/records", host, port)
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()
