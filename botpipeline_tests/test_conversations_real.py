"""Conversations on real data: the OASIS run and the Stream Grab minute."""

from __future__ import annotations

import shutil

import dagster as dg
import duckdb
import pytest

from botpipeline.definitions import defs
from botpipeline_tests.materializations import metadata

RUN_ID = "prod_100p_100s_65_35"


@pytest.fixture
def oasis_run(data_dir, real_data):
    target = data_dir / "incoming" / "oasis" / RUN_ID
    shutil.copytree(real_data / f"oasis_{RUN_ID}", target)
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions("oasis_runs", [RUN_ID])
    result = defs.resolve_job_def("simulation_pipeline").execute_in_process(
        partition_key=RUN_ID, instance=instance)
    assert result.success
    return result


def test_oasis_run_threads(oasis_run, data_dir):
    raw = metadata(oasis_run, "raw/oasis_posts")
    assert raw["dagster/row_count"] == 1363 and raw["users"] == 100
    assert raw["follow_edges"] == 287 and raw["quarantined_lines"] == 0
    assert raw["replies_with_earlier_step_than_parent"] == 183 and raw["empty_texts"] == 7

    conv = metadata(oasis_run, "conversations/simulated_posts")
    assert (conv["posts"], conv["roots"], conv["replies"]) == (1363, 481, 882)
    assert conv["replies_attached_in_data"] == 882
    assert conv["replies_under_placeholder_parents"] == 0
    assert conv["quirks"]["replies_before_parent"] == 183
    # 57 roots repost or quote another post (their thread_id names it, as OASIS writes
    # reposts): each starts its own conversation, so none is a mismatch.
    assert raw["repost_and_quote_roots"] == 57
    assert conv["quirks"]["conversation_id_mismatches"] == 0

    with duckdb.connect(str(data_dir / "botpipeline.duckdb"), read_only=True) as con:
        kinds = dict(con.execute("SELECT kind, count(*) FROM core.simulated_posts "
                                 "GROUP BY kind").fetchall())
        threads = con.execute("SELECT count(*), sum(posts), max(max_depth) "
                              "FROM conversations.simulated_threads").fetchall()[0]
        orphans = con.execute("""
            SELECT count(*) FROM conversations.simulated_posts c
            JOIN raw.oasis_posts r USING (run_id, post_id)
            WHERE r.parent_id IS NOT NULL AND c.root_id <> r.parent_id""").fetchall()[0][0]
    assert kinds == {"post": 424, "reply": 882, "quote": 50, "repost": 7}
    assert threads == (481, 1363, 1)  # every reply is one level under its root
    assert orphans == 0


def test_real_minute_replies_all_accounted(real_minute_day):
    result = defs.resolve_job_def("daily_pipeline").execute_in_process(
        partition_key="2021-01-01", instance=dg.DagsterInstance.get())
    assert result.success
    conv = metadata(result, "conversations/posts")
    assert conv["posts"] == 3173 and conv["replies"] == 716
    assert conv["replies_accounted"] == 716
    assert conv["replies_attached_in_data"] + conv["replies_under_placeholder_parents"] \
        + conv["quirks"]["self_replies"] == 716
    missing = metadata(result, "conversations/missing_parents")
    assert missing["dagster/row_count"] > 600  # a 1 % sample rarely holds the parent
