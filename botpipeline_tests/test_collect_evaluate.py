"""Collect → core → features → scores → evaluation: the real OASIS run published to the
Sharkey test server and read back, evaluated against its personas and an analyst's list."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import dagster as dg
import polars as pl

from botpipeline.clients.platforms.sharkey import aidx_floor
from botpipeline.definitions import defs
from botpipeline.defs.raw.oasis import raw_oasis_posts
from botpipeline.defs.resources import Warehouse
from botpipeline.transforms.label_evaluation import detector_report, is_positive, join_labels
from botpipeline_tests.materializations import metadata
from botpipeline_tests.misskey_server import MisskeyTestServer

RUN_ID = "prod_100p_100s_65_35"


def test_published_run_collected_back_scored_and_evaluated(data_dir, real_data, tmp_path,
                                                           monkeypatch):
    shutil.copytree(real_data / f"oasis_{RUN_ID}", data_dir / "incoming" / "oasis" / RUN_ID)
    with MisskeyTestServer(rate_limit_scale=0) as srv:
        monkeypatch.setenv("SHARKEY_URL", srv.url)
        monkeypatch.setenv("SHARKEY_ADMIN_TOKEN", srv.admin_token)
        monkeypatch.setenv("SHARKEY_TOKEN_STORE", str(tmp_path / "tokens"))
        instance = dg.DagsterInstance.get()
        instance.add_dynamic_partitions("oasis_runs", [RUN_ID])
        assert dg.materialize([raw_oasis_posts], partition_key=RUN_ID, instance=instance,
                              resources={"warehouse": Warehouse()}).success
        assert defs.resolve_job_def("sharkey_publish").execute_in_process(
            partition_key=RUN_ID, instance=instance).success
        # An analyst's own list: two accounts labelled by hand, by their server ids.
        users = {u["username"]: u["id"] for u in srv.users()}
        labels = data_dir / "incoming" / "labels"
        labels.mkdir(parents=True)
        (labels / "hand_labels.csv").write_text(
            f"user_id,label,platform\n{users['benign_0016_a2924e']},human,sharkey\n"
            f"{users['gamer_0000_c40a70']},bot,sharkey\n")
        today = datetime.now(timezone.utc).date().isoformat()
        job = defs.resolve_job_def("collect_platforms")
        selection = [k for k in job.asset_layer.selected_asset_keys
                     if k.path not in (["raw", "bluesky"], ["raw", "hackernews"])]
        result = job.execute_in_process(
            partition_key=today, instance=instance, asset_selection=selection,
            run_config={"ops": {"raw__sharkey": {"config": {"published_runs": [RUN_ID]}}}})
    assert result.success
    collected = metadata(result, "raw/sharkey")
    assert collected["dagster/row_count"] == 1363 + 60 and collected["accounts"] == 100
    assert collected["posts_by_kind"] == {"post": 424 + 0, "reply": 882, "quote": 50,
                                          "repost": 7 + 60}
    assert metadata(result, "core/posts")["dagster/row_count"] == 1423
    assert metadata(result, "conversations/posts")["replies_accounted"] == 882
    assert metadata(result, "scores/bot_scores")["dagster/row_count"] == 100
    evaluation = metadata(result, "scores/label_evaluation")
    # An analyst's list wins over the persona labels for the accounts it names.
    assert evaluation["label_sources"] == {f"sharkey:{RUN_ID}": 98, "hand_labels.csv": 2}
    bot = evaluation["bot_score"]
    assert bot["accounts"] == 100 and bot["positives"] == 36  # 36 harmful personas
    assert sum(bot["confusion"].values()) == 100 and 0 <= bot["roc_auc"] <= 1
    assert "scores_by_label" in evaluation and "per_label" in evaluation


def test_analyst_labels_alone_are_evaluated(tmp_path):
    scores = pl.DataFrame({"platform": ["twitter", "twitter", "sharkey"],
                           "account_id": ["1", "2", "1"], "total_score": [9.0, 1.0, 3.0],
                           "flagged": [True, False, False]})
    labels = pl.DataFrame({"platform": [None, "sharkey"], "account_id": ["1", "1"],
                           "label": ["Bot", "human"], "label_source": ["a.csv", "b.csv"]},
                          schema_overrides={"platform": pl.String})
    frame = join_labels(scores, labels).with_columns(is_positive(pl.col("label")).alias(
        "positive"))
    assert frame.sort("platform").select("platform", "label", "positive").rows() == [
        ("sharkey", "human", False), ("twitter", "Bot", True)]
    report = detector_report(frame, "flagged", "total_score")
    assert report["confusion"] == {"true_positive": 1, "false_positive": 0,
                                   "false_negative": 0, "true_negative": 1}
    assert report["roc_auc"] == 1.0


def test_sharkey_ids_encode_time_so_windows_are_id_ranges():
    start = datetime(2026, 11, 21)
    assert aidx_floor(start) < aidx_floor(start + timedelta(milliseconds=1)) \
        < aidx_floor(start + timedelta(days=1))
    assert len(aidx_floor(start)) == 16
    with MisskeyTestServer(rate_limit_scale=0) as srv:
        from botpipeline.clients.sharkey.client import SharkeyClient
        client = SharkeyClient(srv.url, srv.admin_token)
        note = client.call("notes/create", {"text": "now"})["createdNote"]
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        assert aidx_floor(now - timedelta(seconds=5)) < note["id"] \
            < aidx_floor(now + timedelta(seconds=5))
