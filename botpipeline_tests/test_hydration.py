"""Hydration of missing parents through the Twitter API v2, against a local server."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import dagster as dg
import duckdb
import pytest

from botpipeline.definitions import defs
from botpipeline.defs.hydration.twitter import TwitterApi, hydrated_tweets
from botpipeline.defs.resources import Warehouse

TOKEN = "test-bearer-token-123"


class FakeTwitter(BaseHTTPRequestHandler):
    """GET /2/tweets: the first call is rate limited; ids ending in 7 are 'deleted'."""

    calls: list[list[str]] = []
    limited_once = False

    def do_GET(self):  # noqa: N802
        url = urlparse(self.path)
        if url.path != "/2/tweets":
            self.send_error(404)
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._json(401, {"title": "Unauthorized", "detail": "bad token"})
            return
        if not FakeTwitter.limited_once:
            FakeTwitter.limited_once = True
            self._json(429, {"title": "Too Many Requests"},
                       {"x-rate-limit-reset": str(int(time.time()) + 1)})
            return
        ids = parse_qs(url.query)["ids"][0].split(",")
        FakeTwitter.calls.append(ids)
        data = [{"id": i, "text": f"parent {i}", "author_id": "42", "conversation_id": i,
                 "created_at": "2020-12-31T23:00:00.000Z", "lang": "en"}
                for i in ids if not i.endswith("7")]
        errors = [{"value": i, "resource_id": i, "resource_type": "tweet",
                   "title": "Not Found Error", "detail": f"Could not find tweet: [{i}]."}
                  for i in ids if i.endswith("7")]
        self._json(200, {"data": data, "errors": errors,
                         "includes": {"users": [{"id": "42", "username": "parent_author"}]}})

    def _json(self, status, body, headers=None):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_api():
    FakeTwitter.calls, FakeTwitter.limited_once = [], False
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTwitter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_hydration_attaches_parents(real_minute_day, data_dir, fake_api, monkeypatch):
    instance = dg.DagsterInstance.get()
    assert defs.resolve_job_def("daily_pipeline").execute_in_process(
        partition_key="2021-01-01", instance=instance).success
    db = str(data_dir / "botpipeline.duckdb")
    with duckdb.connect(db, read_only=True) as con:
        missing = con.execute("SELECT count(*) FROM conversations.missing_parents").fetchall()[0][0]
    monkeypatch.setenv("TWITTER_BEARER_TOKEN", TOKEN)
    result = dg.materialize([hydrated_tweets], partition_key="2021-01-01", instance=instance,
                            resources={"warehouse": Warehouse(),
                                       "twitter_api": TwitterApi(base_url=fake_api)})
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["requested"].value == missing
    assert [len(c) for c in FakeTwitter.calls] == [100] * (missing // 100) + (
        [missing % 100] if missing % 100 else [])  # batches of 100, the 429 retried
    # The token never reaches metadata or logs.
    records = instance.get_records_for_run(result.run_id).records
    assert TOKEN not in repr(meta) and all(TOKEN not in r.event_log_entry.user_message
                                           for r in records)

    assert defs.resolve_job_def("refresh_conversations").execute_in_process(
        partition_key="2021-01-01", instance=instance).success
    with duckdb.connect(db, read_only=True) as con:
        still_missing, deleted, hydrated = con.execute("""
            SELECT (SELECT count(*) FROM conversations.missing_parents),
                   (SELECT count(*) FROM raw.hydration_errors),
                   (SELECT count(*) FROM raw.hydrated_tweets)""").fetchall()[0]
    assert hydrated + deleted == missing
    assert still_missing == deleted  # only the ids the API could not return stay missing


def test_missing_token_is_one_clear_error(real_minute_day, data_dir, monkeypatch):
    monkeypatch.delenv("TWITTER_BEARER_TOKEN", raising=False)
    instance = dg.DagsterInstance.get()
    assert defs.resolve_job_def("daily_pipeline").execute_in_process(
        partition_key="2021-01-01", instance=instance).success
    result = dg.materialize([hydrated_tweets], partition_key="2021-01-01", instance=instance,
                            resources={"warehouse": Warehouse(), "twitter_api": TwitterApi()},
                            raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "TWITTER_BEARER_TOKEN" in failure.message
