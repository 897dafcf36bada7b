"""The Jetstream recorder against a local replay server: killed, restarted and disconnected
at random, it keeps every event of the replay exactly once."""

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

import orjson
import pytest
import zstandard

from botpipeline.clients.jetstream import DEFAULT_COLLECTIONS, Recorder, parse_frame
from botpipeline.samples.jetstream import DayConfig, generate
from botpipeline_tests.jetstream_server import JetstreamServer

DAY = date(2024, 9, 9)
NEXT_DAY_US = int(1725926400 * 1e6)  # 2024-09-10T00:00Z


def _frames(events: int, seed: int):
    day = generate(DayConfig(day=DAY, events=events, seed=seed, users=600, like_groups=3,
                             repost_groups=2, wrong_shape_share=0.002, malformed_share=0.003))
    sentinel_t = NEXT_DAY_US + 120_000_000  # closes the day's last hour
    sentinel = (f'{{"did":"did:plc:sentinel","time_us":{sentinel_t},"kind":"identity",'
                f'"identity":{{"did":"did:plc:sentinel","handle":"end.bsky.social",'
                f'"seq":1,"time":"2024-09-10T00:02:00Z"}}}}').encode()
    return day, day.events + [(sentinel_t, sentinel)]


def _wanted(frames):
    """The frames the recorder subscribes to (its default collections; events of other
    kinds and commits without a collection always come)."""
    out = []
    for t, f in frames:
        if t < 0:
            continue
        commit = orjson.loads(f).get("commit")
        coll = commit.get("collection") if isinstance(commit, dict) else None
        if coll is None or coll in DEFAULT_COLLECTIONS:
            out.append(f)
    return sorted(out)


def _recorded_lines(out: Path) -> list[bytes]:
    lines = []
    for path in sorted(out.glob("*/*.jsonl.zst")):
        with open(path, "rb") as fh:
            data = zstandard.ZstdDecompressor().stream_reader(fh).read()
        lines += [x for x in data.split(b"\n") if x]
    for path in sorted(out.glob("*/.*.jsonl.open")):
        lines += [x for x in path.read_bytes().split(b"\n") if x]
    return lines


def _key(line: bytes) -> str:
    event = orjson.loads(line)
    commit = event.get("commit")
    if isinstance(commit, dict):
        return f"commit/{commit.get('collection')}/{commit.get('operation')}"
    return event["kind"]


def _last_cursor(out: Path) -> int:
    state = out / "_state" / "cursor.json"
    try:
        return json.loads(state.read_text())["time_us"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


@pytest.mark.timeout(120)
def test_recorder_killed_restarted_disconnected_keeps_every_event_once(tmp_path):
    day, frames = _frames(12_000, seed=5)
    expected = _wanted(frames)
    out = tmp_path / "incoming" / "bluesky_jetstream"
    rng = random.Random(11)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with JetstreamServer(frames, rate=6000, drop_after=(400, 2500), seed=7) as server:
        def start():
            return subprocess.Popen(
                [sys.executable, "-m", "botpipeline.clients.jetstream", "--out", str(out),
                 "--url", server.url, "--rewind", "5", "--grace", "60", "--backoff-max", "0.2",
                 "--stall", "5"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        kills = 0
        for _ in range(3):  # kill -9 at random moments
            proc = start()
            time.sleep(rng.uniform(0.6, 1.4))
            proc.kill()
            proc.wait(10)
            kills += 1
        proc = start()
        deadline = time.monotonic() + 60
        while _last_cursor(out) < frames[-1][0] and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.3)
        proc.terminate()
        output = proc.communicate(timeout=15)[0].decode()
        drops = server.drops
    assert _last_cursor(out) == frames[-1][0], output[-3000:]
    recorded = sorted(_recorded_lines(out))
    assert len(recorded) == len(expected)
    assert recorded == expected  # every event exactly once, byte for byte
    counts = Counter(_key(x) for x in recorded)
    truth = {k: v for k, v in day.counts.items()
             if not k.startswith(("wrong_shape", "malformed"))}
    for key, n in truth.items():  # per collection and operation, as the generator counted
        if "app.bsky.graph.block" in key:
            assert counts[key] == 0  # not subscribed
        else:
            assert counts[key] >= n  # + wrong-shaped events of that collection
    # + the sentinel and the wrong-shaped identity events (their did is no DID)
    assert counts["identity"] == truth["identity"] + 1 + day.counts["wrong_shape/bad_did"]
    assert not list(out.glob("*/*.late-*"))  # a time-ordered stream has no late events
    assert counts["account"] == truth["account"]
    # the day closed: 24 hour files and its marker; the next day's hour stays open
    folder = out / DAY.isoformat()
    assert len(list(folder.glob("??.jsonl.zst"))) == 24
    assert json.loads((folder / "_closed.json").read_text())["date"] == DAY.isoformat()
    assert list((out / "2024-09-10").glob(".00.jsonl.open"))
    gaps = [json.loads(x) for p in out.glob("*/_gaps.jsonl") for x in p.read_text().splitlines()]
    assert len(gaps) >= kills and all(g["covered"] for g in gaps if g.get("from_us"))
    rejected = (out / "_rejected").glob("*.jsonl")
    reasons = Counter(json.loads(x)["reason"].split(":")[0]
                      for p in rejected for x in p.read_text().splitlines())
    assert reasons and set(reasons) <= {"not JSON", "no integer time_us", "no did or kind"}
    assert drops >= 1
    # the closed day reads back whole through the ingest reader
    from botpipeline.readers.bluesky_jetstream import ingest_day
    from botpipeline.storage.lake import ParquetLake
    report = ingest_day(folder, DAY, ParquetLake(tmp_path / "lake"))
    in_day = sum(1 for x in recorded if orjson.loads(x)["time_us"] < NEXT_DAY_US)
    assert report.balanced and report.events == in_day and report.outcomes["duplicate"] == 0


@pytest.mark.timeout(60)
def test_recorder_compressed_transport_with_a_dictionary(tmp_path):
    day, frames = _frames(3000, seed=9)
    samples = [f for t, f in frames if t >= 0][:2000]
    dictionary = zstandard.train_dictionary(8192, samples).as_bytes()
    (tmp_path / "dict").write_bytes(dictionary)
    out = tmp_path / "rec"
    with JetstreamServer(frames, rate=50_000, drop_after=(700, 1500), seed=1,
                         dictionary=dictionary) as server:
        rec = Recorder(out, server.url, rewind_s=5, compress=True,
                       dictionary=tmp_path / "dict", backoff_initial_s=0.05,
                       backoff_max_s=0.1, log=lambda m: None)
        thread = threading.Thread(target=rec.run, kwargs={"max_seconds": 30})
        thread.start()
        deadline = time.monotonic() + 30
        while (rec.cursor or 0) < frames[-1][0] and time.monotonic() < deadline:
            time.sleep(0.1)
        rec.stop = True
        thread.join(10)
    assert sorted(_recorded_lines(out)) == _wanted(frames)
    assert rec.stats["connections"] >= 2 and rec.stats["duplicates"] > 0


def test_parse_frame_reasons():
    assert parse_frame(b"{")[1].startswith("not JSON")
    assert parse_frame(b"[1]")[1] == "not a JSON object"
    assert parse_frame(b'{"did":"d","kind":"x","time_us":"1"}')[1] == "no integer time_us"
    assert parse_frame(b'{"time_us":1}')[1] == "no did or kind"
