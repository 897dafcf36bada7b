"""Collect → core → features → scores → evaluation through the Dagster assets, with Bluesky
and Hacker News answered by the local replay server and an analyst's label list."""

from __future__ import annotations

import dagster as dg

from botpipeline.clients.platforms.bluesky import PROFILES, SEARCH, THREAD
from botpipeline.definitions import defs
from botpipeline_tests.materializations import metadata
from botpipeline_tests.platform_replay_server import (ReplayServer, algolia_search,
                                                      cursor_pages, json_answer)
from botpipeline_tests.test_platform_collectors import (HN_SEARCH, S, bsky_post, hn_item,
                                                        hn_story, hn_user, thread_item)

DATE = "2024-05-01"


def _script(server: ReplayServer) -> None:
    posts = [bsky_post(f"s{i}", did=f"did:plc:author{i % 4}", likes=10 * i, replies=i % 3)
             for i in range(12)]
    server.route(SEARCH, cursor_pages(posts, "posts"), repeat=True)

    def thread(request):
        uri = request.one("uri")
        tag = uri.rsplit("/", 1)[-1]
        replies = [thread_item(bsky_post(f"{tag}c{j}", did=f"did:plc:commenter{j}", parent=uri))
                   for j in range(3)]
        return json_answer({"thread": thread_item(bsky_post(tag), *replies)})

    server.route(THREAD, thread, repeat=True)
    server.route(PROFILES, lambda request: json_answer({"profiles": [
        {"did": did, "handle": f"{did.rsplit(':', 1)[-1]}.bsky.social", "displayName": did,
         "description": "", "createdAt": "2023-01-01T00:00:00", "followersCount": 3,
         "followsCount": 50, "postsCount": 900} for did in request.query["actors"]]}),
                 repeat=True)
    stories = [hn_story(i, S + 600 * i, points=5 * i, comments=2) for i in range(8)]
    server.route(HN_SEARCH, algolia_search(stories), repeat=True)
    for story in stories:
        sid = int(story["objectID"])
        comments = [hn_item(1000 * (sid + 1) + j, sid, sid, f"commenter{j}", f"comment {j}")
                    for j in range(3)]
        server.route(f"/items/{sid}", json_answer(
            hn_item(sid, sid, None, story["author"], None, *comments, kind="story")),
            repeat=True)
    for name in {s["author"] for s in stories} | {f"commenter{j}" for j in range(3)}:
        server.route(f"/users/{name}", json_answer(hn_user(name)), repeat=True)


def test_collectors_feed_scores_and_the_evaluation(data_dir):
    labels = data_dir / "incoming" / "labels"
    labels.mkdir(parents=True)
    (labels / "analyst.csv").write_text(
        "user_id,label\ndid:plc:author0,bot\ndid:plc:author1,human\ndid:plc:commenter0,bot\n"
        "user1,human\ncommenter1,bot\nnobody,bot\n")
    collect = {"limit": 20, "max_posts_for_comment_harvest": 4, "max_comments_per_post": 3}
    with ReplayServer() as server:
        _script(server)
        result = defs.resolve_job_def("collect_platforms").execute_in_process(
            partition_key=DATE, instance=dg.DagsterInstance.get(), run_config={
                "ops": {"raw__bluesky": {"config": {"queries": ["bots"], **collect}},
                        "raw__hackernews": {"config": {"queries": ["rust"], **collect}}},
                "resources": {"bluesky": {"config": {"base_url": server.url}},
                              "hackernews": {"config": {"base_url": server.url}}}})
        assert not server.unmatched
    assert result.success
    bluesky, hn = metadata(result, "raw/bluesky"), metadata(result, "raw/hackernews")
    assert bluesky["dagster/row_count"] == 12 + 4 * 3 and bluesky["quarantined"] == 0
    assert hn["dagster/row_count"] == 8 + 4 * 3 and hn["quarantined"] == 0
    assert metadata(result, "raw/sharkey")["dagster/row_count"] == 0  # nothing asked of it
    core = metadata(result, "core/posts")
    assert core["dagster/row_count"] == 24 + 20 and core["posts_by_kind"]["reply"] == 24
    assert metadata(result, "conversations/posts")["replies_accounted"] == 24
    scored = metadata(result, "scores/bot_scores")["dagster/row_count"]
    assert scored >= 10
    evaluation = metadata(result, "scores/label_evaluation")
    assert evaluation["dagster/row_count"] == 5  # "nobody" was never collected
    assert evaluation["label_sources"] == {"analyst.csv": 5}
    report = evaluation["bot_score"]
    assert report["positives"] == 3 and sum(report["confusion"].values()) == 5


def test_bluesky_search_logs_in_with_an_app_password(monkeypatch):
    """searchPosts needs a login since 2025: with the env vars set, the collector creates a
    session at the PDS and sends its token; a refused login fails clearly, password unsaid."""
    import json
    import threading
    from datetime import datetime
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import pytest

    from botpipeline.defs.collectors.resources import BlueskyResource

    class Pds(BaseHTTPRequestHandler):
        def _send(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if sent == {"identifier": "me.bsky.social", "password": "app-pass-1234"}:
                self._send(200, {"accessJwt": "jwt-abc", "did": "did:plc:me"})
            else:
                self._send(401, {"error": "AuthenticationRequired"})

        def do_GET(self):
            if self.headers.get("Authorization") != "Bearer jwt-abc":
                self._send(403, {"error": "Forbidden"})
            else:
                self._send(200, {"posts": [bsky_post("p1")]})

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pds)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        monkeypatch.setenv("BLUESKY_HANDLE", "me.bsky.social")
        monkeypatch.setenv("BLUESKY_APP_PASSWORD", "app-pass-1234")
        found = BlueskyResource(pds_url=url).adapter().search_posts(
            "bots", datetime(2024, 5, 1), datetime(2024, 5, 2), 10)
        assert found.posts.height == 1 and found.quarantine.height == 0
        monkeypatch.setenv("BLUESKY_APP_PASSWORD", "wrong-pass-9999")
        with pytest.raises(dg.Failure) as caught:
            BlueskyResource(pds_url=url).adapter()
        assert "refused" in str(caught.value) and "wrong-pass-9999" not in str(caught.value)
    finally:
        server.shutdown()
