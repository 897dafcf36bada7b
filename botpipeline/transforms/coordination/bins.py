"""Identical- and near-identical-behaviour bins (the Danish election study's method, sparse).

The study grouped users whose sets of liked (separately: retweeted) tweets are exactly equal,
by building a dense Tweet x User matrix (128 GB of RAM plus 590 GB of swap). Here each user's
set is one hash of its sorted post ids, computed in DuckDB: users with the same hash share a
bin. Exact sets are brittle (a scripted account that skips two posts gets a bin of its own),
so distinct sets of at least ``min_set_size`` posts are also compared by MinHash with LSH
banding, candidate pairs are verified with their exact Jaccard similarity, and sets at or
above ``jaccard_threshold`` are joined (connected components) into near-identical bins.

Input: a relation ``acts(action, actor, post_id)``, one row per distinct engagement.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from botpipeline.transforms.coordination.components import component_labels


@dataclass(frozen=True)
class BinConfig:
    min_set_size: int = 3
    """Sets smaller than this are binned exactly but never compared for near-identity: two
    users who liked the same one or two popular posts say little."""
    max_set_size: int = 0
    """Sets larger than this (0: no limit) are binned exactly but not compared by MinHash: a
    set's cost is its size times num_perm rows, so a firehose day's heaviest likers (thousands
    of posts each) would dominate it, and a campaign set is rarely that large."""
    jaccard_threshold: float = 0.8
    num_perm: int = 64
    """MinHash permutations; with ``bands`` bands of num_perm/bands rows, a pair at Jaccard
    0.8 becomes a candidate with probability 1 - (1 - 0.8^4)^16 > 0.9998."""
    bands: int = 16


def exact_sets_sql(acts: str) -> str:
    """One row per (action, actor): set size and a 128-bit hash of the sorted post ids."""
    return f"""
        SELECT action, actor, count(*) AS set_size,
               md5(string_agg(post_id, ',' ORDER BY post_id)) AS set_hash
        FROM {acts} GROUP BY action, actor"""


def near_identical_pairs_sql(acts: str, sets: str, c: BinConfig) -> str:
    """Pairs of distinct sets (set_a < set_b) whose exact Jaccard similarity is at least the
    threshold, found through MinHash LSH on one representative member per set."""
    rows = c.num_perm // c.bands
    return f"""
    WITH distinct_sets AS (
        SELECT action, set_hash, any_value(set_size) AS set_size, min(actor) AS representative
        FROM {sets} WHERE set_size >= {int(c.min_set_size)}
          AND ({int(c.max_set_size)} = 0 OR set_size <= {int(c.max_set_size)})
        GROUP BY action, set_hash),
    items AS (
        SELECT d.action, d.set_hash, a.post_id
        FROM distinct_sets d JOIN {acts} a ON a.action = d.action AND a.actor = d.representative),
    signature AS (
        SELECT i.action, i.set_hash, p.k, min(hash(i.post_id, p.k)) AS h
        FROM items i CROSS JOIN range({int(c.num_perm)}) p(k) GROUP BY ALL),
    band_keys AS (
        SELECT action, set_hash, k // {rows} AS band, hash(list(h ORDER BY k)) AS band_key
        FROM signature GROUP BY action, set_hash, band),
    candidates AS (
        SELECT DISTINCT a.action, a.set_hash AS set_a, b.set_hash AS set_b
        FROM band_keys a JOIN band_keys b
          ON a.action = b.action AND a.band = b.band AND a.band_key = b.band_key
        WHERE a.set_hash < b.set_hash),
    shared AS (
        SELECT c.action, c.set_a, c.set_b, count(*) AS common
        FROM candidates c
        JOIN items x ON x.action = c.action AND x.set_hash = c.set_a
        JOIN items y ON y.action = c.action AND y.set_hash = c.set_b AND y.post_id = x.post_id
        GROUP BY ALL)
    SELECT s.action, s.set_a, s.set_b, s.common,
           s.common / (a.set_size + b.set_size - s.common) AS jaccard
    FROM shared s
    JOIN distinct_sets a ON a.action = s.action AND a.set_hash = s.set_a
    JOIN distinct_sets b ON b.action = s.action AND b.set_hash = s.set_b
    WHERE s.common / (a.set_size + b.set_size - s.common) >= {float(c.jaccard_threshold)}"""


def behaviour_bins(con: duckdb.DuckDBPyConnection, acts: str,
                   config: BinConfig = BinConfig()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(bins per actor, verified near-identical set pairs).

    Bins per actor: action, actor, set_size, bin_id (the exact set's hash), bin_size (actors
    with exactly this set), near_bin_id (the smallest set hash among sets joined by
    near-identity; the exact bin itself when it has no near-identical neighbour) and
    near_bin_size (actors in all of them)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _sets AS {exact_sets_sql(acts)}")
    pairs = con.sql(near_identical_pairs_sql(acts, "_sets", config)).pl()
    labels = pl.concat([
        component_labels(part.select(pl.col("set_a").alias("a"), pl.col("set_b").alias("b")))
          .with_columns(pl.lit(action).alias("action"))
        for (action,), part in pairs.group_by(["action"])
    ]) if pairs.height else pl.DataFrame(schema={"node": pl.String, "label": pl.String,
                                                  "action": pl.String})
    con.register("_near_labels", labels.rename({"node": "set_hash", "label": "near_bin_id"}))
    bins = con.sql("""
        SELECT s.action, s.actor, s.set_size, s.set_hash AS bin_id,
               count(*) OVER (PARTITION BY s.action, s.set_hash) AS bin_size,
               coalesce(n.near_bin_id, s.set_hash) AS near_bin_id
        FROM _sets s LEFT JOIN _near_labels n USING (action, set_hash)""").pl()
    con.unregister("_near_labels")
    con.execute("DROP TABLE _sets")
    bins = bins.with_columns(
        pl.len().over("action", "near_bin_id").cast(pl.Int64).alias("near_bin_size"),
        pl.col("bin_size").cast(pl.Int64))
    return bins.sort("action", "actor"), pairs
