"""Twitter API v2 / twarc2 input: the real twarc-csv samples, broken lines included."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import duckdb
import pytest

from botpipeline.definitions import defs
from botpipeline.readers.twitter_v2 import read_file

SAMPLES = ["flat.jsonl", "noflat.jsonl", "users.jsonl", "edited.jsonl",
           "streaming_output_with_error.jsonl"]


@pytest.mark.parametrize("name", SAMPLES)
def test_every_line_is_accounted_for(real_data, name):
    path = real_data / "twarc_csv_v2" / name
    batch = read_file(path, name)
    raw_lines = [line for line in path.read_bytes().split(b"\n") if line.strip()]
    assert batch.lines == len(raw_lines)
    good = []
    for line in raw_lines:
        try:
            good.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    assert batch.quarantine.height == len(raw_lines) - len(good)
    expected_tweets = expected_errors = 0
    for obj in good:
        if "data" in obj:
            data = obj["data"] if isinstance(obj["data"], list) else [obj["data"]]
            expected_tweets += sum("text" in d for d in data)
            expected_tweets += len(obj.get("includes", {}).get("tweets", []))
            expected_errors += len(obj.get("errors", []))
        elif "text" in obj:
            expected_tweets += 1
    assert batch.posts.height == expected_tweets
    assert batch.errors.height == expected_errors
    assert batch.posts["post_id"].null_count() == 0


def test_streaming_file_quarantines_the_broken_line(real_data):
    batch = read_file(real_data / "twarc_csv_v2" / "streaming_output_with_error.jsonl", "s")
    assert batch.lines == 8 and batch.quarantine.height == 1
    assert batch.quarantine["line_number"].to_list() == [8]
    assert batch.quarantine["reason"][0].startswith("invalid JSON")


def test_v2_day_through_the_pipeline(data_dir, real_data):
    day = data_dir / "incoming" / "twitter_v2" / "2021-04-08"
    day.mkdir(parents=True)
    for name in ("noflat.jsonl", "streaming_output_with_error.jsonl"):
        shutil.copy(real_data / "twarc_csv_v2" / name, day / name)
    result = defs.resolve_job_def("daily_pipeline").execute_in_process(
        partition_key="2021-04-08", instance=dg.DagsterInstance.get())
    assert result.success
    with duckdb.connect(str(data_dir / "botpipeline.duckdb"), read_only=True) as con:
        kinds = dict(con.execute("SELECT kind, count(*) FROM core.posts GROUP BY kind").fetchall())
        replies = con.execute("""
            SELECT count(*), count(*) FILTER (WHERE parent_status = 'in_data'),
                   count(*) FILTER (WHERE parent_status = 'placeholder')
            FROM conversations.posts WHERE parent_id IS NOT NULL""").fetchall()[0]
        quarantined = con.execute("SELECT count(*) FROM raw.v2_quarantine").fetchall()[0][0]
    assert kinds.get("reply", 0) >= 31 and sum(kinds.values()) >= 100
    assert replies[0] == replies[1] + replies[2] and replies[1] > 0  # includes hold parents
    assert quarantined == 1


def test_big_day_reads_files_in_parallel_with_the_same_result(real_data, tmp_path,
                                                              monkeypatch):
    """A day past PARALLEL_BYTES is read one process per core (gzip through ISA-L when
    installed); the frames are those of the serial read."""
    import gzip

    import polars as pl

    from botpipeline.readers import twitter_v2

    day = tmp_path / "2021-01-01"
    day.mkdir()
    for name in ("flat.jsonl", "users.jsonl", "streaming_output_with_error.jsonl"):
        data = (real_data / "twarc_csv_v2" / name).read_bytes()
        (day / f"{name}.gz").write_bytes(gzip.compress(data))
    serial = twitter_v2.read_day(day)
    monkeypatch.setattr(twitter_v2, "PARALLEL_BYTES", 1)
    parallel = twitter_v2.read_day(day)
    for part in ("posts", "users", "errors", "quarantine"):
        assert getattr(parallel, part).equals(getattr(serial, part)), part
    assert (parallel.lines, parallel.blank_lines) == (serial.lines, serial.blank_lines)
    assert serial.posts.height and isinstance(serial.posts, pl.DataFrame)
