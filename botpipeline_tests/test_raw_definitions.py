"""The Dagster layer of raw/tweets: definitions, CLI materialization, sensor, schedule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb

from botpipeline.definitions import defs
from botpipeline.defs.raw.schedules import daily_refresh_schedule
from botpipeline.defs.raw.sensors import twitterstream_files_sensor
from botpipeline.defs.resources import Warehouse
from botpipeline_tests.conftest import PROJECT_ROOT


def test_definitions_load():
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey(["raw", "tweets"]) in graph.get_all_asset_keys()
    job = defs.resolve_job_def("daily_pipeline")
    assert job.partitions_def is not None
    assert defs.resolve_sensor_def("twitterstream_files_sensor")
    assert defs.resolve_schedule_def("daily_refresh_schedule")
    checks = {key.name for key in graph.asset_check_keys}
    assert {"unique_tweet_ids", "line_accounting_balances",
            "quarantine_share_below_threshold"} <= checks


def test_cli_materialize_real_minute(real_minute_day, data_dir):
    """The README's command on the real minute file: exactly 3,173 tweets, 307 deletions."""
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m",
               "botpipeline.definitions", "--select", "raw/tweets", "--partition", "2021-01-01"]
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with duckdb.connect(os.environ["BOTPIPELINE_DUCKDB"], read_only=True) as con:
        counts = con.execute(
            "SELECT (SELECT count(*) FROM raw.tweets WHERE collection_date = '2021-01-01'),"
            "       (SELECT count(*) FROM raw.deletions WHERE collection_date = '2021-01-01'),"
            "       (SELECT count(*) FROM raw.quarantine)").fetchall()[0]
        summary = con.execute("SELECT tweet_lines, delete_notices, unique_tweets "
                              "FROM marts.stream_daily_summary").fetchall()
    assert counts == (3173, 307, 0)
    assert summary == [(3173, 307, 3173)]


def test_materialize_metadata_and_checks(real_minute_day, data_dir):
    result = dg.materialize([defs.get_assets_def(dg.AssetKey(["raw", "tweets"]))],
                            partition_key="2021-01-01", resources={"warehouse": Warehouse()})
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["dagster/row_count"].value == 3173
    assert meta["lines_read"].value == 3480
    assert meta["lines_by_message_type"].value == {"delete": 307, "tweet": 3173}
    assert meta["tweets_per_hour"].value.startswith("![plot](data:image/png;base64,")
    assert (data_dir / "plots" / "raw" / "tweets" / "2021-01-01.png").exists()
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {"unique_tweet_ids": True, "line_accounting_balances": True,
                           "quarantine_share_below_threshold": True}


def test_quarantine_share_check_warns(data_dir):
    day = data_dir / "incoming" / "twitterstream" / "2021-01-03"
    day.mkdir(parents=True)
    (day / "00.jsonl").write_bytes(b'{"id_str": "1", "text": "a", "user": {"id_str": "2"}}\n'
                                   b"not json\n")
    result = dg.materialize([defs.get_assets_def(dg.AssetKey(["raw", "tweets"]))],
                            partition_key="2021-01-03", resources={"warehouse": Warehouse()})
    assert result.success  # a bad line never fails the run
    share = [e for e in result.get_asset_check_evaluations()
             if e.check_name == "quarantine_share_below_threshold"][0]
    assert not share.passed and share.severity == dg.AssetCheckSeverity.WARN


def _age(path: Path, seconds: float) -> None:
    for file in [path, *path.rglob("*")]:
        past = time.time() - seconds
        os.utime(file, (past, past))


def test_sensor_requests_new_and_changed_dates(data_dir):
    incoming = data_dir / "incoming" / "twitterstream"
    (incoming / "2021-01-02").mkdir()
    (incoming / "2021-01-02" / "a.jsonl").write_text("{}\n")
    (incoming / "not-a-date").mkdir()
    _age(incoming, 120)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance,
                                          resources={"warehouse": Warehouse()})
        first = twitterstream_files_sensor(context)
        assert [r.partition_key for r in first] == ["2021-01-02"]
        cursor = json.loads(context.cursor)

        again = dg.build_sensor_context(instance=instance, cursor=context.cursor,
                                        resources={"warehouse": Warehouse()})
        assert isinstance(twitterstream_files_sensor(again), dg.SkipReason)

        (incoming / "2021-01-02" / "a.jsonl").write_text("{}\n{}\n")  # changed file
        (incoming / "2021-01-04").mkdir()  # new date, still being copied (fresh mtime)
        (incoming / "2021-01-04" / "b.jsonl").write_text("{}\n")
        _age(incoming / "2021-01-02", 120)
        changed = dg.build_sensor_context(instance=instance, cursor=json.dumps(cursor),
                                          resources={"warehouse": Warehouse()})
        requests = twitterstream_files_sensor(changed)
        assert [r.partition_key for r in requests] == ["2021-01-02"]
        assert requests[0].run_key != first[0].run_key

        _age(incoming / "2021-01-04", 120)  # settled now
        later = dg.build_sensor_context(instance=instance, cursor=changed.cursor,
                                        resources={"warehouse": Warehouse()})
        assert [r.partition_key for r in twitterstream_files_sensor(later)] == ["2021-01-04"]


def test_schedule_targets_yesterday_only_when_it_has_files(data_dir):
    at = datetime(2021, 1, 3, 2, 0, tzinfo=timezone.utc)
    context = dg.build_schedule_context(scheduled_execution_time=at,
                                        resources={"warehouse": Warehouse()})
    assert isinstance(daily_refresh_schedule(context), dg.SkipReason)
    (data_dir / "incoming" / "twitterstream" / "2021-01-02").mkdir()
    request = daily_refresh_schedule(context)
    assert request.partition_key == "2021-01-02"


def test_oasis_sensor_adds_partitions_and_requests_runs(data_dir):
    from botpipeline.defs.raw.oasis_sensor import oasis_runs_sensor

    run = data_dir / "incoming" / "oasis" / "run_a"
    run.mkdir(parents=True)
    (run / "a_dataset.jsonl").write_text("{}\n")
    (data_dir / "incoming" / "oasis" / "bad name!").mkdir()
    _age(data_dir / "incoming" / "oasis", 120)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance,
                                          resources={"warehouse": Warehouse()})
        result = oasis_runs_sensor(context)
        assert [r.partition_key for r in result.run_requests] == ["run_a"]
        assert result.dynamic_partitions_requests[0].partition_keys == ["run_a"]
        again = dg.build_sensor_context(instance=instance, cursor=context.cursor,
                                        resources={"warehouse": Warehouse()})
        assert not oasis_runs_sensor(again).run_requests
