"""Reconstruction over generated multi-day input equals the known trees exactly."""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import duckdb
import polars as pl
import pytest

from botpipeline.defs.conversations.reconstruction import daily_conversations
from botpipeline.defs.resources import Warehouse
from botpipeline.samples.conversations import (TreeSpec, cross_day_share, generate_trees,
                                               partitions)
from botpipeline.transforms.conversations import reconstruct
from botpipeline.transforms.core_model import POST_COLUMNS, conform


def _quirky_posts() -> tuple[pl.DataFrame, pl.DataFrame]:
    """A self-reply, a 3-cycle with a tail, and a reply older than its parent (day 3)."""
    rows = [("q_self", "q_self", 0), ("q_c1", "q_c3", 1), ("q_c2", "q_c1", 2),
            ("q_c3", "q_c2", 3), ("q_tail", "q_c2", 4), ("q_late_parent", None, 10),
            ("q_early_child", "q_late_parent", 5)]
    base = datetime(2021, 2, 3, 12)
    frame = pl.DataFrame({
        "post_id": [r[0] for r in rows], "parent_id": [r[1] for r in rows],
        "author_id": ["q"] * len(rows), "platform": ["generated"] * len(rows),
        "created_at": [base.replace(minute=r[2]) for r in rows]})
    posts = conform(frame, POST_COLUMNS).with_columns(
        pl.col("created_at").dt.date().alias("collection_date"))
    # The cycle c1 -> c3 -> c2 -> c1 is broken at its smallest id, q_c1.
    truth = pl.DataFrame({
        "post_id": ["q_self", "q_c1", "q_c2", "q_c3", "q_tail", "q_late_parent",
                    "q_early_child"],
        "root_id": ["q_self", "q_c1", "q_c1", "q_c1", "q_c1", "q_late_parent",
                    "q_late_parent"],
        "depth": [0, 0, 1, 2, 2, 0, 1]})
    return posts, truth


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    posts, truth = generate_trees(TreeSpec(posts=30_000, days=7, seed=3))
    quirky, quirky_truth = _quirky_posts()
    posts = pl.concat([posts, quirky])
    truth = pl.concat([truth, quirky_truth])
    root = tmp_path_factory.mktemp("trees")
    warehouse = Warehouse(data_dir=str(root), analysts_database=str(root / "a.duckdb"))
    for key, part in partitions(posts).items():
        warehouse.lake.write("core", "posts", key, part, order_by="post_id")
    return posts, truth, warehouse


def test_input_has_the_hard_cases(generated):
    posts, truth, _ = generated
    assert truth["depth"].max() >= 250  # deep chains
    assert cross_day_share(posts) > 0.1  # replies across days
    assert truth.filter(pl.col("root_id").str.starts_with("gone")).height > 100  # missing
    branching = truth.group_by("root_id").len()["len"].max()
    assert branching > 50


def test_reconstruction_equals_truth(generated):
    posts, truth, warehouse = generated
    dates = sorted(str(d) for d in posts["collection_date"].unique())
    quirks = {}
    for key in dates:
        result = dg.materialize([daily_conversations], partition_key=key,
                                resources={"warehouse": warehouse})
        assert result.success
        for event in result.get_asset_materialization_events():
            if event.asset_key.path[-1] == "posts":
                quirks[key] = event.materialization.metadata["quirks"].value
    with warehouse.get_connection() as con:
        got = con.sql("SELECT post_id, root_id, depth FROM conversations.posts").pl()
        threads = con.sql("SELECT collection_date, root_id, posts, max_depth "
                          "FROM conversations.threads").pl()
    assert got.height == truth.height == posts.height  # each post once, on its own date
    diff = truth.join(got, on="post_id", how="left", suffix="_got").filter(
        (pl.col("root_id") != pl.col("root_id_got")) | (pl.col("depth") != pl.col("depth_got"))
        | pl.col("root_id_got").is_null())
    assert diff.height == 0, diff.head(10)
    assert quirks["2021-02-03"]["cycles_broken"] == 1
    assert quirks["2021-02-03"]["self_replies"] == 1
    assert quirks["2021-02-03"]["replies_before_parent"] == 1
    # On the last day the window covers everything: thread sizes equal the truth's.
    last = threads.filter(pl.col("collection_date") == max(threads["collection_date"]))
    sizes = truth.group_by("root_id").agg(pl.len().alias("expected"))
    check = last.join(sizes, on="root_id")
    assert check.height == last.height
    assert (check["posts"] == check["expected"]).all()


def test_lookback_window_edges():
    """A parent exactly lookback days back is found; one day further is a placeholder."""
    rows = [("p_old", None, "2021-03-01"), ("p_edge", None, "2021-03-02"),
            ("r_old", "p_old", "2021-03-09"), ("r_edge", "p_edge", "2021-03-09")]
    frame = pl.DataFrame({"post_id": [r[0] for r in rows], "parent_id": [r[1] for r in rows],
                          "collection_date": [r[2] for r in rows]}).with_columns(
        pl.col("collection_date").str.to_date(),
        pl.col("collection_date").str.to_datetime().alias("created_at"))
    con = duckdb.connect()
    con.register("posts", frame)
    lookback = 7
    reconstruct(con, f"""
        SELECT post_id, parent_id, 'a' AS author_id, created_at, NULL AS conversation_id,
               NULL::BIGINT AS source_step, collection_date = DATE '2021-03-09' AS is_current
        FROM posts WHERE collection_date >= DATE '2021-03-09' - INTERVAL {lookback} DAY""")
    status = dict(con.execute("SELECT post_id, parent_status FROM conv_posts").fetchall())
    assert status == {"r_old": "placeholder", "r_edge": "in_data"}
