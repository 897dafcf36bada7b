"""Every sensor, schedule and automation condition evaluated once against a real instance
with data present: none throws, and after `botpipeline run` none finds anything to do (on
generated days and on the shipped sample). Then a new model makes the automation conditions
rescore every date and evaluate the label set, and a date whose input folder is gone keeps its
rows unless the run asks to clear them."""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timezone

import dagster as dg
import polars as pl
import pytest

from botpipeline import cli
from botpipeline.definitions import defs
from botpipeline.defs.models.automation import stale_score_dates
from botpipeline.defs.models.bot_classifier import model_store
from botpipeline.defs.resources import Warehouse
from botpipeline.samples.twitterstream import generate
from botpipeline.storage.lake import ParquetLake
from botpipeline_tests.conftest import copy_shipped_sample

DATES = ["2021-03-01", "2021-03-02"]


def _evaluate_everything(instance, automation_cursor=None) -> tuple[dict[str, list], object]:
    """name -> run requests of every sensor, schedule and automation condition, evaluated
    once as the daemon would (fresh sensor cursors; the automation conditions from
    ``automation_cursor``, their previous evaluation), and the automation's new cursor."""
    repo = defs.get_repository_def()
    requests: dict[str, list] = {}
    for sensor in repo.sensor_defs:
        if isinstance(sensor, dg.AutomationConditionSensorDefinition):
            continue  # evaluated below, as its daemon does
        # The daemon checks requests of dynamic partitions against the instance.
        with dg.build_sensor_context(instance=instance, repository_def=repo,
                                     sensor_name=sensor.name,
                                     resources={"warehouse": Warehouse()}) as context, \
                dg.partition_loading_context(dynamic_partitions_store=instance):
            data = sensor.evaluate_tick(context)
        requests[f"sensor {sensor.name}"] = list(data.run_requests or [])
    tick = datetime(2021, 3, 3, 2, tzinfo=timezone.utc)  # the morning after the last date
    for schedule in repo.schedule_defs:
        with dg.build_schedule_context(instance=instance, repository_def=repo,
                                       scheduled_execution_time=tick,
                                       resources={"warehouse": Warehouse()}) as context:
            data = schedule.evaluate_tick(context)
        requests[f"schedule {schedule.name}"] = list(data.run_requests or [])
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance,
                                               cursor=automation_cursor)
    for key in defs.resolve_asset_graph().get_all_asset_keys():
        if result.get_num_requested(key):
            requests[f"automation {key.to_user_string()}"] = sorted(
                result.get_requested_partitions(key), key=str)
    return requests, result.cursor


def _generate(data_dir, days: int) -> None:
    """Generated days with labels, settled (files an hour old, as copied in long ago)."""
    generate(data_dir, DATES[0], days=days, tweets_per_day=600, minutes_per_day=30, seed=3)
    hour_ago = time.time() - 3600
    for path in (data_dir / "incoming").rglob("*"):
        os.utime(path, (hour_ago, hour_ago))


def test_every_sensor_runs_and_finds_nothing_after_the_cli(data_dir):
    _generate(data_dir, len(DATES))
    assert cli.main(["run", "--train-on", ""]) == 0
    warehouse = Warehouse()
    with dg.DagsterInstance.get() as instance:
        requests, cursor = _evaluate_everything(instance)
        assert {"sensor label_sets_sensor",
                "sensor twitterstream_files_sensor", "sensor oasis_runs_sensor",
                "sensor reconstruct_after_hydration",
                "schedule daily_refresh_schedule"} <= set(requests)
        # The platform collectors fetch new posts from remote servers every night (off by
        # default): nothing local can say that work is done.
        assert requests.pop("schedule collect_platforms_schedule")
        assert {name: r for name, r in requests.items() if r} == {}

        # A model: the scores sensor scores every date, the label set is judged.
        assert defs.resolve_job_def("bot_model").execute_in_process(
            instance=instance, run_config={"ops": {"models__bot_classifier": {"config": {
                "model": "logistic"}}}}).success
        version = model_store(warehouse).current_version()
        assert [key for key, _ in stale_score_dates(warehouse, version)] == DATES
        requests, cursor = _evaluate_everything(instance, cursor)
        assert requests["automation scores/bot_probability"] == DATES
        assert requests["automation scores/model_evaluation"] == ["generated_sample"]
        assert {name for name, r in requests.items() if r} == {
            "automation scores/bot_probability", "automation scores/model_evaluation",
            "schedule collect_platforms_schedule"}
        # `botpipeline run` without training scores them too; then nothing is left to do.
        assert cli.main(["run", "--train-on", "", "--date", DATES[1]]) == 0
        assert stale_score_dates(warehouse, version) == []
        requests, cursor = _evaluate_everything(instance, cursor)
        requests.pop("schedule collect_platforms_schedule")
        assert {name: r for name, r in requests.items() if r} == {}


def test_nothing_to_do_after_the_cli_on_the_shipped_sample(data_dir):
    """The README's first command on the shipped sample, then the UI's automation: no
    sensor throws and nothing is requested (only the nightly remote collection)."""
    copy_shipped_sample(data_dir)
    hour_ago = time.time() - 3600  # copied in long ago: nothing is still settling
    for path in (data_dir / "incoming").rglob("*"):
        os.utime(path, (hour_ago, hour_ago))
    assert cli.main(["run"]) == 0
    with dg.DagsterInstance.get() as instance:
        requests, cursor = _evaluate_everything(instance)
        assert requests.pop("schedule collect_platforms_schedule")
        assert {name: r for name, r in requests.items() if r} == {}
        # A second tick (the daemon's next one, with the first one's cursor) neither.
        requests, _ = _evaluate_everything(instance, cursor)
        requests.pop("schedule collect_platforms_schedule")
        assert {name: r for name, r in requests.items() if r} == {}


def test_a_date_without_its_folder_keeps_its_rows(data_dir, tmp_path, capsys):
    _generate(data_dir, 1)
    key = DATES[0]
    assert cli.main(["run", "--train-on", ""]) == 0
    lake = ParquetLake(data_dir / "lake")
    rows = lake.partition_rows("raw", "tweets", key)
    shutil.move(data_dir / "incoming" / "twitterstream" / key, tmp_path / key)
    capsys.readouterr()
    assert cli.main(["run", "--date", key, "--train-on", ""]) == 1
    out = capsys.readouterr().out
    assert "no input folder" in out and "--clear-missing" in out
    assert lake.partition_rows("raw", "tweets", key) == rows > 0
    assert cli.main(["run", "--date", key, "--train-on", "", "--clear-missing"]) == 0
    assert lake.partition_rows("raw", "tweets", key) == 0


def test_a_bad_date_is_one_line_naming_the_range(data_dir, capsys):
    assert cli.main(["run", "--date", "2021-13-01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2021-13-01" in err[0] and "YYYY-MM-DD from" in err[0]


def test_partitions_start_at_the_earliest_input_date(data_dir, monkeypatch):
    from botpipeline.defs.partitions import STREAM_GRAB_START, partitions_start

    monkeypatch.delenv("BOTPIPELINE_PARTITIONS_START")
    assert partitions_start(data_dir) == STREAM_GRAB_START  # no dated input yet
    for source, key in (("twitterstream", "2021-01-03"), ("engagements", "2020-12-30"),
                        ("twitter_v2", "not-a-date")):
        (data_dir / "incoming" / source / key).mkdir(parents=True)
    assert partitions_start(data_dir) == "2020-12-30"
    monkeypatch.setenv("BOTPIPELINE_PARTITIONS_START", "2019-05-01")
    assert partitions_start(data_dir) == "2019-05-01"
    monkeypatch.setenv("BOTPIPELINE_PARTITIONS_START", "May 2019")
    with pytest.raises(ValueError, match="BOTPIPELINE_PARTITIONS_START"):
        partitions_start(data_dir)


def test_lineage_follows_lookback_days():
    """Each look-back asset's partition mapping is its lookback_days default, and a run
    config reaching further than the lineage fails rather than read what the UI hides."""
    from botpipeline.defs.conversations.reconstruction import ConversationConfig
    from botpipeline.defs.coordination.bins import BehaviourBinsConfig
    from botpipeline.defs.coordination.networks import CoActionNetworkConfig
    from botpipeline.defs.features.account_features import FeatureConfig
    from botpipeline.defs.partitions import checked_lookback

    graph = defs.resolve_asset_graph()
    for key, upstream, config in (
            ("features/account_features", "core/posts", FeatureConfig()),
            ("conversations/posts", "core/posts", ConversationConfig()),
            ("coordination/behaviour_bins", "raw/engagements", BehaviourBinsConfig()),
            ("coordination/co_action_edges", "raw/engagements", CoActionNetworkConfig())):
        node = graph.get(dg.AssetKey.from_user_string(key))
        mapping = node.partition_mappings[dg.AssetKey.from_user_string(upstream)]
        assert mapping.start_offset == -config.lookback_days, key
    assert checked_lookback(3, 7, "x") == 3
    with pytest.raises(dg.Failure, match="lookback_days 9 is outside its lineage"):
        checked_lookback(9, 7, "x")


def test_views_are_published_once_until_the_tables_change(tmp_path):
    """A run's many steps refresh the analysts' views once: a refresh with the same view
    definitions opens nothing; a new table, or force, publishes again."""
    from botpipeline.storage.catalog import publish_catalog
    from botpipeline.storage.lake import ParquetLake

    lake, database = ParquetLake(tmp_path / "lake"), tmp_path / "analysts.duckdb"
    lake.write("raw", "a", "2021-01-01", pl.DataFrame({"x": [1]}))
    first = publish_catalog(lake, database)
    assert first.published and not first.unchanged and first.views == ["raw.a"]
    lake.write("raw", "a", "2021-01-02", pl.DataFrame({"x": [2], "y": ["new column"]}),
               evolve=True)
    again = publish_catalog(lake, database)
    assert again.published and again.unchanged  # the glob view sees the new partition
    import duckdb

    with duckdb.connect(str(database), read_only=True) as con:
        assert con.sql("SELECT count(*), count(y) FROM raw.a").fetchall() == [(2, 1)]
    lake.write("raw", "b", None, pl.DataFrame({"z": [1]}))
    assert publish_catalog(lake, database).views == ["raw.a", "raw.b"]
    assert publish_catalog(lake, database).unchanged
    assert not publish_catalog(lake, database, force=True).unchanged
