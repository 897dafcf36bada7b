"""Twitter API v2 / twarc2 input: the real twarc-csv samples, broken lines included."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import duckdb
import polars as pl
import pytest

from botpipeline.definitions import defs
from botpipeline.readers.arrow_json import line_count
from botpipeline.readers.twitter_v2 import pages
from botpipeline.readers.twitter_v2.pages import parse_block

SAMPLES = ["flat.jsonl", "noflat.jsonl", "users.jsonl", "edited.jsonl",
           "streaming_output_with_error.jsonl"]


@pytest.mark.parametrize("name", SAMPLES)
def test_every_line_is_accounted_for(real_data, name):
    path = real_data / "twarc_csv_v2" / name
    batch = parse_block(path.read_bytes(), 1)
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
    assert batch.tweets.height == expected_tweets
    assert batch.errors.height == expected_errors
    assert batch.tweets["post_id"].null_count() == 0


def test_streaming_file_quarantines_the_broken_line(real_data):
    batch = parse_block(
        (real_data / "twarc_csv_v2" / "streaming_output_with_error.jsonl").read_bytes(), 1)
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


@pytest.mark.parametrize("name", SAMPLES)
def test_fast_path_gives_the_rows_of_the_exact_path(real_data, name, monkeypatch):
    """Arrow's reader and orjson line by line give the same rows, and the fast path really
    ran (the exact one only for the line Arrow cannot read)."""
    data = (real_data / "twarc_csv_v2" / name).read_bytes()
    if name.startswith("streaming"):  # the broken last line would send it all the exact way
        data = b"\n".join(data.split(b"\n")[:7]) + b"\n"
    exact = pages._exact(pages._numbered(data, 1), None, line_count(data))
    calls = []
    original = pages._exact
    monkeypatch.setattr(pages, "_exact", lambda lines, *a: calls.append(lines) or original(
        lines, *a))
    fast = parse_block(data, 1)
    assert calls == []
    for part in ("tweets", "users", "errors", "quarantine"):
        a, b = getattr(fast, part), getattr(exact, part)
        key = ["_line", "_pos"] if "_line" in a.columns else ["line_number"]
        assert a.sort(key).equals(b.sort(key)), part
    assert (fast.lines, fast.blank_lines) == (exact.lines, exact.blank_lines)
    assert fast.tweets.height + fast.users.height > 0


def _v2_tables(lake) -> dict:
    with lake.connect() as con:
        return {t: con.sql(f"SELECT * EXCLUDE (collection_date) FROM raw.{t} ORDER BY ALL").pl()
                for t in ("v2_tweets", "v2_users", "v2_api_errors", "v2_quarantine")}


def test_hostile_day_in_small_blocks_on_any_number_of_workers(real_data, tmp_path):
    """A day with every surprise: a cut gzip file, blank lines, lines of no known shape, keys
    present with null values, non-object items, the same tweet and user in several files.
    Nothing is lost or crashes, and the tables do not depend on block size or workers."""
    import gzip
    from datetime import date

    from botpipeline.readers.twitter_v2 import files, ingest
    from botpipeline.storage.lake import ParquetLake

    day = tmp_path / "2021-04-08"
    (day / "more").mkdir(parents=True)
    flat = (real_data / "twarc_csv_v2" / "flat.jsonl").read_bytes()
    page = (real_data / "twarc_csv_v2" / "noflat.jsonl").read_bytes()
    odd = [b'{"errors": null}', b'{"id": null, "text": "a tweet with a null id"}',
           b'{"data": "not a list"}', b'{"data": [{"id": "1", "text": "t"}, null]}',
           b'{"data": [], "includes": {"users": [{"id": "7", "username": "u7"}, 5]}}',
           b'{"id": "99", "username": "epoch", "created_at": 1609459200000}',
           b'[1, 2]', b'{"meta": {"result_count": 0}}', b"not json", b""]
    (day / "a.jsonl").write_bytes(page + b"\n".join(odd) + b"\n" + flat)
    whole = gzip.compress(flat + page)
    (day / "more" / "cut.jsonl.gz").write_bytes(whole[: len(whole) * 3 // 4])
    corrupt = bytearray(whole)
    corrupt[len(whole) // 2: len(whole) // 2 + 64] = bytes(64)
    (day / "more" / "corrupt.jsonl.gz").write_bytes(bytes(corrupt))
    (day / "z.jsonl").write_bytes(flat)  # every tweet and author again, later in file order

    def ingest_with(block_bytes: int, workers: int):
        lake = ParquetLake(tmp_path / f"lake-{block_bytes}-{workers}")
        report = ingest.ingest_v2_day(day, date(2021, 4, 8), lake, workers=workers,
                                      block_bytes=block_bytes)
        return report, _v2_tables(lake)

    report, tables = ingest_with(files.BLOCK_BYTES, 1)
    for block_bytes, workers in ((4096, 2), (300_000, 2)):
        other_report, other = ingest_with(block_bytes, workers)
        for table in tables:
            assert other[table].equals(tables[table]), (block_bytes, workers, table)
        assert (other_report.lines, other_report.quarantined_lines) == \
            (report.lines, report.quarantined_lines)

    quarantine = tables["v2_quarantine"]
    reasons = dict(zip(quarantine["line_number"].to_list(), quarantine["reason"].to_list()))
    first_odd = page.count(b"\n") + 1
    assert reasons[first_odd + 2] == "a page whose data is a JSON str"
    assert reasons[first_odd + 3] == "a page whose data holds a value that is not an object"
    assert reasons[first_odd + 4] == \
        "a page whose includes.users holds a value that is not an object"
    assert reasons[first_odd + 6] == "JSON list, not an object"
    assert reasons[first_odd + 7] == "not a v2 page, tweet or user"
    assert reasons[first_odd + 8].startswith("invalid JSON")
    cut = quarantine.filter(pl.col("source_file") == "more/cut.jsonl.gz")
    assert cut["line_number"].null_count() == 1  # the file's own row
    assert cut["reason"].str.starts_with("unreadable file").any()
    assert report.damaged_files == ["more/corrupt.jsonl.gz", "more/cut.jsonl.gz"]
    broken = quarantine.filter(pl.col("source_file") == "more/corrupt.jsonl.gz")
    assert broken["reason"].str.starts_with("unreadable file: corrupt gzip data").any()
    assert broken["line_number"].max() > 1  # the lines before the damage were read
    assert report.blank_lines == 1
    assert report.lines == report.lines_parsed + report.quarantined_lines

    tweets, users = tables["v2_tweets"], tables["v2_users"]
    assert tweets.filter(pl.col("text") == "a tweet with a null id").height == 1
    assert users.filter(pl.col("account_id") == "99")["created_at"].dt.year().to_list() == [2021]
    assert tweets.select("post_id", "included").is_duplicated().sum() == 0
    # a user seen in several files keeps its last sighting: z.jsonl comes last
    authors = {str(json.loads(line)["author"]["id"]) for line in flat.splitlines()}
    assert set(users.filter(pl.col("account_id").is_in(authors))["source_file"]) == {"z.jsonl"}
    # a tweet keeps its first: a.jsonl; its author's username resolved within the file
    flat_ids = {json.loads(line)["id"] for line in flat.splitlines()}
    kept = tweets.filter(pl.col("post_id").is_in(flat_ids) & ~pl.col("included"))
    assert set(kept["source_file"]) == {"a.jsonl"}
    assert kept["author_username"].null_count() == 0


def test_generated_day_matches_its_truth(tmp_path):
    """The generated twarc2 day (stream and search files, bad lines, blank lines) comes out
    with exactly the generator's tweets, included tweets, users, API errors and lines."""
    from datetime import date

    from botpipeline.readers.twitter_v2.ingest import ingest_v2_day
    from botpipeline.samples.twitter_v2 import generate
    from botpipeline.storage.lake import ParquetLake

    truth = generate(tmp_path, "2021-04-08", tweets=3000, seed=2, files=4)
    lake = ParquetLake(tmp_path / "lake")
    report = ingest_v2_day(tmp_path / "incoming" / "twitter_v2" / "2021-04-08",
                           date(2021, 4, 8), lake, workers=2, block_bytes=1 << 20)
    tables = _v2_tables(lake)
    tweets = tables["v2_tweets"]
    assert tweets.filter(~pl.col("included")).height == truth["tweets"]
    assert tweets.filter(pl.col("included")).height == truth["included_tweets"]
    assert tables["v2_users"].height == truth["users"]
    assert tables["v2_api_errors"].height == truth["api_errors"]
    assert (report.lines, report.blank_lines, report.quarantined_lines) == \
        (truth["lines"], truth["blank_lines"], truth["bad_lines"])
    assert tweets["author_username"].null_count() == 0
