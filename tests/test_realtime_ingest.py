"""HTTP ingest: authentication, limits, garbage, flooding, persistence, and a SIGKILL of
the server in the middle of ingest."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tsunami.errors import InputError
from tsunami.realtime.ingest import IngestConfig, load_tokens, make_app
from tsunami.realtime.stations import StationCatalogue
from tsunami.realtime.store import RecordStore

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE_PATH = ROOT / "scenarios" / "tohoku2011" / "stations.toml"
CATALOGUE = StationCatalogue.load(CATALOGUE_PATH)
TOKEN = "s3cret-token-for-tests-only"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1_299_822_360 * 10**9


def _batch(start, n, station="P02"):
    return {"records": [{"station": station, "time": T0 + i * 10**9, "value": 4.7 + 1e-4 * i}
                        for i in range(start, start + n)]}


def _run(store, check, **limits):
    config = IngestConfig({TOKEN: "gauge-operator"}, **limits)

    async def go():
        async with TestClient(TestServer(make_app(store, CATALOGUE, config))) as client:
            await check(client)

    asyncio.run(go())


def test_auth_limits_garbage_and_valid_batches(tmp_path):
    store = RecordStore(tmp_path / "r.db")

    async def check(client):
        r = await client.post("/v1/records", json=_batch(0, 5))
        assert r.status == 401 and "Bearer" in r.headers["WWW-Authenticate"]
        r = await client.post("/v1/records", json=_batch(0, 5),
                              headers={"Authorization": "Bearer wrong-token-123456789"})
        assert r.status == 401
        r = await client.post("/v1/records", data=b"x" * 10_000, headers={
            **AUTH, "Content-Type": "application/json"})
        assert r.status == 413
        r = await client.post("/v1/records", json=_batch(0, 60), headers=AUTH)
        assert r.status == 413 and "more than 50 records" in (await r.json())["error"]
        r = await client.post("/v1/records", data="station,time\n", headers={
            **AUTH, "Content-Type": "text/csv"})
        assert r.status == 415
        r = await client.post("/v1/records", data=b"{not json", headers={
            **AUTH, "Content-Type": "application/json"})
        assert r.status == 400 and "malformed JSON" in (await r.json())["error"]
        bad = _batch(0, 4)
        bad["records"][1]["time"] = "2011-03-11T05:46:01"  # no zone
        bad["records"][2]["station"] = "NOPE"
        bad["records"][3]["value"] = "4.7"
        r = await client.post("/v1/records", json=bad, headers=AUTH)
        body = await r.json()
        assert r.status == 400 and len(body["details"]) == 3
        assert body["details"][0].startswith("records[1].time")
        assert body["details"][1].startswith("records[2].station")
        assert body["details"][2].startswith("records[3].value")
        assert store.count() == 0  # refused batches store nothing
        r = await client.post("/v1/records", json=_batch(0, 40), headers=AUTH)
        assert r.status == 200 and (await r.json())["inserted"] == 40
        missing = {"records": [{"station": "802", "time": "2011-03-11T05:46:00Z",
                                "value": None}]}
        r = await client.post("/v1/records", json=missing, headers=AUTH)
        assert (await r.json())["inserted"] == 1
        r = await client.post("/v1/records", json=_batch(30, 20), headers=AUTH)  # retry
        assert (await r.json()) | {"last_seq": 0} == {
            "received": 20, "inserted": 10, "duplicates": 10, "conflicts": 0, "last_seq": 0}
        r = await client.get("/v1/health")
        assert (await r.json())["records"] == 51

    _run(store, check, max_body_bytes=8000, max_records=50, rate_per_s=1000, burst=1000)
    assert store.records("P02").source[0] == "http:gauge-operator"
    problems = [str(p) for p in store.problems()]
    assert any("HTTP 401" in p for p in problems) and any("HTTP 400" in p for p in problems)
    store.close()


def test_flooding_is_rate_limited(tmp_path):
    store = RecordStore(tmp_path / "r.db")

    async def check(client):
        statuses = []
        for i in range(30):
            r = await client.post("/v1/records", json=_batch(i, 1), headers=AUTH)
            statuses.append(r.status)
            if r.status == 429:
                assert int(r.headers["Retry-After"]) >= 1
        assert statuses[:5] == [200] * 5 and statuses.count(429) >= 20
        for _ in range(30):  # unauthenticated floods are limited too
            r = await client.post("/v1/records", json=_batch(0, 1))
        assert r.status == 429

    _run(store, check, rate_per_s=1.0, burst=5)
    assert store.count() == 5
    store.close()


def test_token_file(tmp_path):
    path = tmp_path / "tokens.toml"
    path.write_text('[clients]\njma = "0123456789abcdefXYZ"\n')
    assert load_tokens(path) == {"0123456789abcdefXYZ": "jma"}
    path.write_text('[clients]\njma = "short"\n')
    with pytest.raises(InputError, match="16 characters"):
        load_tokens(path)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(db, tokens, port):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tsunami.cli", "feeds", "serve", "--catalogue",
         str(CATALOGUE_PATH), "--db", str(db), "--tokens", str(tokens), "--port", str(port),
         "--rate", "1000", "--burst", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1)
            return proc
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server did not start: {proc.stdout.read().decode()}")


def _post(port, body):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/records", data=json.dumps(body).encode(),
        headers={**AUTH, "Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())


def test_sigkill_mid_ingest_loses_no_acknowledged_record(tmp_path):
    """A client streams batches; the server is killed with SIGKILL while batches are in
    flight; every batch it acknowledged is in the store after the kill; the restarted
    server takes the resent batches without duplicating anything."""
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'[clients]\nop = "{TOKEN}"\n')
    db = tmp_path / "r.db"
    port = _free_port()
    server = _start_server(db, tokens, port)
    acked, batches = [], [_batch(i * 200, 200) for i in range(400)]
    stop = threading.Event()

    def client():
        for i, body in enumerate(batches):
            if stop.is_set():
                return
            try:
                _post(port, body)
            except (urllib.error.URLError, ConnectionError, OSError):
                return  # the server died under this request: not acknowledged
            acked.append(i)

    thread = threading.Thread(target=client)
    thread.start()
    while len(acked) < 25 and thread.is_alive():
        time.sleep(0.01)
    server.send_signal(signal.SIGKILL)
    server.wait()
    stop.set()
    thread.join()
    assert 25 <= len(acked) < len(batches)
    with RecordStore(db) as store:
        assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = set(store.records("P02").time_ns.tolist())
    for i in acked:
        assert {r["time"] for r in batches[i]["records"]} <= stored
    # restart and resend everything from the first unacknowledged batch (a client does
    # not know whether the batch in flight was committed)
    port = _free_port()
    server = _start_server(db, tokens, port)
    try:
        answers = [_post(port, body) for body in batches[len(acked):len(acked) + 5]]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert all(a["received"] == 200 for a in answers)
    with RecordStore(db) as store:
        assert store.count() == 200 * (len(acked) + 5)  # nothing lost, nothing doubled
