"""Generated posts in the core model with known reply trees, over several daily partitions.

Posts are made in time order. Each reply picks an earlier post: mostly a recent one (which
grows deep chains, since recent posts are often replies themselves), sometimes any post of the
last days (branching, and replies that arrive days after their parent). A share of replies
points at ids that are not in the data (the 1 % stream's usual case). Vectorized with numpy:
10 million posts take seconds. The truth (root and depth of every post) is computed by the
same pointer-jumping idea on arrays, independently of the SQL under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import polars as pl

from botpipeline.transforms.core_model import POST_COLUMNS, conform


@dataclass(frozen=True)
class TreeSpec:
    posts: int = 10_000
    days: int = 7
    start: date = date(2021, 2, 1)
    reply_share: float = 0.6
    recent_share: float = 0.7  # replies to a recent post (chains) vs any post of the window
    recent_mean_offset: float = 4.0
    window_days: float = 5.0  # how far back "any post" replies reach
    missing_share: float = 0.02  # replies whose parent is not in the data
    deep_chains: int = 2  # extra reply chains, each reply answering the previous one,
    deep_chain_length: int = 300  # spread over all the days
    authors: int | None = None
    seed: int = 0


def generate_trees(spec: TreeSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Posts (core columns + collection_date) and the truth (post_id, root_id, depth)."""
    rng = np.random.default_rng(spec.seed)
    n = spec.posts
    seconds = np.sort(rng.uniform(0, spec.days * 86_400, n))
    is_reply = rng.random(n) < spec.reply_share
    is_reply[0] = False
    recent = rng.random(n) < spec.recent_share
    offset_recent = rng.geometric(1.0 / spec.recent_mean_offset, n)
    # "Any post of the window": an index a uniform time back, found by binary search.
    back = rng.uniform(0, spec.window_days * 86_400, n)
    offset_window = np.arange(n) - np.searchsorted(seconds, seconds - back)
    offset = np.where(recent, offset_recent, np.maximum(offset_window, 1))
    parent = np.arange(n) - offset
    parent = np.where(is_reply & (parent >= 0), parent, -1)
    missing = (parent >= 0) & (rng.random(n) < spec.missing_share)
    for _ in range(spec.deep_chains):
        length = spec.deep_chain_length
        base = len(seconds)
        seconds = np.concatenate([seconds, np.sort(rng.uniform(0, spec.days * 86_400, length))])
        parent = np.concatenate([parent, [-1], np.arange(base, base + length - 1)])
        missing = np.concatenate([missing, np.zeros(length, dtype=bool)])
    n = len(seconds)

    authors = rng.integers(0, spec.authors or max(10, n // 20), n)
    start = datetime.combine(spec.start, datetime.min.time())
    created = (np.datetime64(start, "us")
               + (seconds * 1e6).astype("int64").astype("timedelta64[us]"))
    posts = pl.DataFrame({"i": np.arange(n), "parent": parent, "missing": missing,
                          "author": authors, "created_at": created}).select(
        pl.format("g{}", pl.col("i")).alias("post_id"),
        pl.when(pl.col("missing")).then(pl.format("gone{}", pl.col("i")))
          .when(pl.col("parent") >= 0).then(pl.format("g{}", pl.col("parent")))
          .alias("parent_id"),
        pl.format("a{}", pl.col("author")).alias("author_id"),
        pl.col("created_at"),
        pl.lit("generated").alias("platform"),
        pl.when(pl.col("parent") < 0).then(pl.lit("post")).otherwise(pl.lit("reply"))
          .alias("kind"),
        pl.format("text of g{}", pl.col("i")).alias("text"),
        pl.lit("en").alias("lang"), pl.lit("generated").alias("source"),
    )
    posts = conform(posts, POST_COLUMNS).with_columns(
        pl.col("created_at").dt.date().alias("collection_date"))
    ids, parent_ids = posts["post_id"], posts["parent_id"]

    # Truth by pointer jumping on arrays; a missing parent is a placeholder root.
    link = np.where(missing | (parent < 0), -1, parent)
    root, depth = _jump(link)
    under_missing = missing[root]
    root_ids = pl.select(pl.when(pl.Series(under_missing))
                         .then(parent_ids.gather(root)).otherwise(ids.gather(root))).to_series()
    truth = pl.DataFrame({"post_id": ids, "root_id": root_ids,
                          "depth": depth + under_missing.astype(np.int64)})
    return posts, truth


def _jump(link: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root index and depth of every node of a forest given each node's parent (-1: none)."""
    n = len(link)
    anc = np.where(link >= 0, link, np.arange(n))
    dist = (link >= 0).astype(np.int64)
    while True:
        pending = link[anc] >= 0
        if not pending.any():
            return anc, dist
        dist = np.where(pending, dist + dist[anc], dist)
        anc = np.where(pending, anc[anc], anc)


def partitions(posts: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The posts split by collection date, ISO date -> frame."""
    return {str(d): part for (d,), part in posts.partition_by("collection_date",
                                                                as_dict=True).items()}


def cross_day_share(posts: pl.DataFrame) -> float:
    """Share of in-data replies whose parent was collected on an earlier day."""
    parents = posts.select(pl.col("post_id").alias("parent_id"),
                           pl.col("collection_date").alias("parent_date"))
    joined = posts.join(parents, on="parent_id", how="inner")
    return joined.filter(pl.col("parent_date") < pl.col("collection_date")).height / max(
        joined.height, 1)

