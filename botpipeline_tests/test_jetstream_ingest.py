"""raw/bluesky_jetstream: recorded firehose days into raw, core and engagements, every line
accounted for; the planted co-liking groups found through the assets."""

import json
from datetime import date

import dagster as dg
import duckdb
import orjson
import polars as pl
import zstandard

from botpipeline.defs.raw.bluesky_jetstream import (bluesky_jetstream_sensor, closed_days,
                                                    CLOSED_MARKER)
from botpipeline.readers.bluesky_jetstream import ingest_day
from botpipeline.samples.jetstream import DayConfig, write_day
from botpipeline.storage.lake import ParquetLake
from botpipeline.transforms.coordination.groups import recovery

DAY = date(2024, 9, 9)
US = 1725840000 * 1_000_000  # 2024-09-09T00:00Z


def _views(lake: ParquetLake) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    lake.register_views(con)
    return con


def test_every_line_is_ingested_counted_or_quarantined(tmp_path):
    folder = write_day(tmp_path, DayConfig(day=DAY, events=20_000, seed=3, users=800,
                                           wrong_shape_share=0.002))
    truth = json.loads((tmp_path / "truth" / "bluesky_jetstream" / DAY.isoformat()
                        / "counts.json").read_text())
    # damage the day as the world would: a plain file with broken lines, a duplicated event,
    # a truncated zstd file
    first = zstandard.ZstdDecompressor().stream_reader(
        open(folder / "00.jsonl.zst", "rb")).read().split(b"\n")[0]
    (folder / "00.extra.jsonl").write_bytes(b'{"did": "did:plc:x", "time_us": \n\n[1, 2]\n'
                                            + first + b"\n")
    (folder / "05.broken.jsonl.zst").write_bytes(
        (folder / "05.jsonl.zst").read_bytes()[:200])
    lake = ParquetLake(tmp_path / "lake")
    report = ingest_day(folder, DAY, lake)
    assert report.balanced and report.files_quarantined == 1
    outcomes = report.outcomes
    assert outcomes["duplicate"] == 1
    assert outcomes["like"] == truth["commit/app.bsky.feed.like/create"]
    assert outcomes["post"] == truth["commit/app.bsky.feed.post/create"]
    assert outcomes["repost"] == truth["commit/app.bsky.feed.repost/create"]
    assert outcomes["follow"] == truth["commit/app.bsky.graph.follow/create"]
    assert outcomes["other_collection"] == truth["commit/app.bsky.graph.block/create"]
    assert outcomes["delete"] == sum(v for k, v in truth.items() if k.endswith("/delete"))
    assert outcomes["identity"] == truth["identity"]
    assert outcomes["account"] == truth["account"]
    wrong = sum(v for k, v in truth.items() if k.startswith("wrong_shape"))
    assert outcomes["quarantined"] == wrong + 2  # + the two unreadable lines
    con = _views(lake)
    reasons = dict(con.execute("SELECT reason, count(*) FROM raw.bluesky_jetstream_quarantine "
                               "GROUP BY 1").fetchall())
    assert reasons["like or repost without subject.uri"] == truth["wrong_shape/like_without_subject"]
    assert reasons["unknown event kind"] == truth["wrong_shape/unknown_kind"]
    assert reasons["did is not a DID"] == truth["wrong_shape/bad_did"]
    assert reasons["commit without collection"] == truth["wrong_shape/commit_without_collection"]
    assert any(r.startswith("unreadable") for r in reasons) and "not a JSON object" in reasons
    lines = con.execute("SELECT line_number FROM raw.bluesky_jetstream_quarantine WHERE "
                        "source_file LIKE '%extra.jsonl' ORDER BY 1").fetchall()
    assert lines == [(1,), (3,)]
    assert con.execute("SELECT sum(events) FROM raw.bluesky_jetstream_event_counts"
                       ).fetchall()[0][0] == report.events
    kinds = dict(con.execute("SELECT kind, count(*) FROM raw.bluesky_jetstream_posts "
                             "GROUP BY 1").fetchall())
    assert kinds["repost"] == outcomes["repost"]
    assert sum(kinds.values()) == outcomes["post"] + outcomes["repost"]
    # replies carry parent and root URIs; a root is its own conversation
    bad = con.execute("SELECT count(*) FROM raw.bluesky_jetstream_posts WHERE "
                      "(kind = 'reply' AND (parent_id IS NULL OR NOT starts_with(conversation_id,"
                      " 'at://'))) OR (kind = 'post' AND conversation_id <> post_id)"
                      ).fetchall()[0][0]
    assert bad == 0
    # re-running replaces the partition: same rows, no duplicates
    again = ingest_day(folder, DAY, lake)
    assert again.rows == report.rows


def _event(did, t, collection, rkey, record, operation="create"):
    return orjson.dumps({"did": did, "time_us": t, "kind": "commit", "commit": {
        "rev": "3kaheyt6vpc22", "operation": operation, "collection": collection,
        "rkey": rkey, "record": record, "cid": "bafyrei"}})


def test_real_bluesky_records(tmp_path, real_data):
    """Records from the real AT-proto samples, wrapped as Jetstream commit events."""
    folder = real_data / "bluesky_atproto_sdk"
    post = json.loads((folder / "post_record.json").read_text())
    thread = json.loads((folder / "thread_view_post_with_embed_media.json").read_text())
    follows = json.loads((folder / "get_follows.json").read_text())
    lines = []
    did, _, rkey = post["uri"].removeprefix("at://").split("/")
    lines.append(_event(did, US + 1, "app.bsky.feed.post", rkey, post["value"]))
    views = [thread["thread"]["post"]] + [r["post"] for r in thread["thread"].get("replies", [])]
    if thread["thread"].get("parent"):
        views.append(thread["thread"]["parent"]["post"])
    for i, view in enumerate(views):
        v_did, _, v_rkey = view["uri"].removeprefix("at://").split("/")
        lines.append(_event(v_did, US + 10 + i, "app.bsky.feed.post", v_rkey, view["record"]))
    for i, f in enumerate(follows["follows"][:5]):
        lines.append(_event(follows["subject"]["did"], US + 100 + i, "app.bsky.graph.follow",
                            f"3kfollow{i}", {"$type": "app.bsky.graph.follow",
                                             "subject": f["did"],
                                             "createdAt": "2024-09-09T00:00:00Z"}))
    day = tmp_path / "in" / DAY.isoformat()
    day.mkdir(parents=True)
    (day / "00.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(
        b"\n".join(lines) + b"\n"))
    lake = ParquetLake(tmp_path / "lake")
    report = ingest_day(day, DAY, lake)
    assert report.balanced and report.quarantined == 0
    con = _views(lake)
    rows = {r[0]: r[1:] for r in con.execute(
        "SELECT post_id, kind, text, quoted_id, parent_id, lang "
        "FROM raw.bluesky_jetstream_posts").fetchall()}
    assert rows[post["uri"]][:2] == ("post", "new text114")
    top = thread["thread"]["post"]
    quoted = top["record"]["embed"]["record"]["record"]["uri"]  # recordWithMedia
    assert rows[top["uri"]][0] == "quote" and rows[top["uri"]][2] == quoted
    for view in views:
        reply = view["record"].get("reply")
        if reply:
            assert rows[view["uri"]][0] == "reply"
            assert rows[view["uri"]][3] == reply["parent"]["uri"]
    followees = {r[0] for r in con.execute(
        "SELECT followee_id FROM raw.bluesky_jetstream_follows").fetchall()}
    assert followees == {f["did"] for f in follows["follows"][:5]}


def test_sensor_requests_closed_days_only(data_dir):
    root = data_dir / "incoming" / "bluesky_jetstream"
    (root / "2024-09-09").mkdir(parents=True)
    (root / "2024-09-09" / "00.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b""))
    (root / "2024-09-10").mkdir()
    (root / "2024-09-10" / ".00.jsonl.open").write_bytes(b"")
    import os
    import time
    old = time.time() - 120
    for p in root.rglob("*"):
        os.utime(p, (old, old))
    assert closed_days(root) == {}
    (root / "2024-09-09" / CLOSED_MARKER).write_text("{}")
    os.utime(root / "2024-09-09" / CLOSED_MARKER, (old, old))
    assert list(closed_days(root)) == ["2024-09-09"]
    from botpipeline.defs.resources import Warehouse
    context = dg.build_sensor_context(resources={"warehouse": Warehouse()})
    result = bluesky_jetstream_sensor(context)
    assert [r.partition_key for r in result] == ["2024-09-09"]
    again = bluesky_jetstream_sensor(dg.build_sensor_context(
        cursor=context.cursor, resources={"warehouse": Warehouse()}))
    assert isinstance(again, dg.SkipReason)


def test_job_finds_the_planted_coliking_groups(data_dir):
    write_day(data_dir, DayConfig(day=DAY, events=60_000, seed=4))
    from botpipeline.definitions import defs
    result = defs.resolve_job_def("bluesky_jetstream_daily").execute_in_process(
        partition_key=DAY.isoformat(), instance=dg.DagsterInstance.get())
    assert result.success
    checks = [e.event_specific_data for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    jet = {c.check_name: c.passed for c in checks if c.asset_key.path == ["raw", "bluesky_jetstream"]}
    assert all(jet.values()) and len(jet) == 4
    lake = ParquetLake(data_dir / "lake")
    con = _views(lake)
    likes = con.execute("SELECT count(*) FROM raw.engagements WHERE action = 'like' "
                        "AND source = 'jetstream'").fetchall()[0][0]
    distinct = con.execute("SELECT count(DISTINCT (post_id, account_id)) "
                           "FROM raw.bluesky_jetstream_likes").fetchall()[0][0]
    assert likes == distinct > 20_000  # one engagement per (post, account)
    assert con.execute("SELECT count(*) FROM core.posts WHERE platform = 'bluesky'"
                       ).fetchall()[0][0] > 5_000
    truth = pl.read_csv(data_dir / "truth" / "bluesky_jetstream" / DAY.isoformat()
                        / "like_groups.csv")
    bins = con.sql("SELECT near_bin_id AS group_id, actor FROM coordination.behaviour_bins "
                   "WHERE action = 'like' AND near_bin_size >= 3 AND set_size >= 3").pl()
    score = recovery(bins, truth.select("actor", "group"))
    assert score["account_precision"] >= 0.95 and score["account_recall"] >= 0.95, score
    # the README's example query
    top = con.execute("""
        SELECT collection_date, near_bin_id, count(*) AS accounts, max(set_size) AS posts
        FROM coordination.behaviour_bins
        WHERE action = 'like' AND set_size >= 3
        GROUP BY ALL HAVING count(*) >= 3 ORDER BY accounts DESC LIMIT 10""").fetchall()
    assert len(top) == 10 and top[0][3] == 25
    reposters = pl.read_csv(data_dir / "truth" / "bluesky_jetstream" / DAY.isoformat()
                            / "repost_groups.csv")
    edges = con.sql("SELECT actor_a, actor_b FROM coordination.co_action_edges "
                    "WHERE kind = 'co_repost' AND significant").pl()
    found = set(edges["actor_a"]) | set(edges["actor_b"])
    assert len(found & set(reposters["actor"])) >= 0.95 * reposters.height


def test_line_counts_match_a_plain_split_whatever_the_blank_lines(tmp_path, monkeypatch):
    """The streamed line count (the proof DuckDB read every line) agrees with splitting the
    file, for blank and whitespace-only lines anywhere, across chunk boundaries, zstd or not."""
    import random

    from botpipeline.readers import bluesky_jetstream
    from botpipeline.readers.bluesky_jetstream import _count_lines

    monkeypatch.setattr(bluesky_jetstream, "CHUNK_BYTES", 3)  # lines across chunk boundaries
    rng = random.Random(7)
    for trial in range(200):
        lines = [rng.choice([b"", b" ", b"\t", b"\r", b"{}", b'{"a": 1}', b"  x"])
                 for _ in range(rng.randint(0, 30))]
        data = b"\n".join(lines) + rng.choice([b"", b"\n", b"\n\n"])
        parts = data.split(b"\n")
        if data.endswith(b"\n"):
            parts.pop()
        expected = (len(parts), sum(1 for p in parts if not p.strip())) if data else (0, 0)
        plain, packed = tmp_path / f"{trial}.jsonl", tmp_path / f"{trial}.jsonl.zst"
        plain.write_bytes(data)
        packed.write_bytes(zstandard.ZstdCompressor().compress(data[:5])
                           + zstandard.ZstdCompressor().compress(data[5:]))  # two frames
        assert _count_lines(plain)[:2] == expected, data
        assert _count_lines(packed) == (*expected, len(data)), data
