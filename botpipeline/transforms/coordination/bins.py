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
    threshold, found through MinHash LSH on one representative member per set.

    Each distinct set gets a dense integer id; its signature is one row of ``num_perm``
    minima computed in a single aggregate (no set x permutation rows: on a firehose day those
    were hundreds of millions and ran DuckDB out of memory), and each band's key is a hash of
    its minima."""
    rows = c.num_perm // c.bands
    minima = ", ".join(f"min(hash(post_id, {k})) AS h{k}" for k in range(c.num_perm))
    band_keys = ", ".join("hash(" + ", ".join(f"h{b * rows + r}" for r in range(rows)) + ")"
                          for b in range(c.bands))
    return f"""
    WITH distinct_sets AS MATERIALIZED (  -- once: its row numbers are the sets' ids
        SELECT row_number() OVER () AS set_id, *
        FROM (SELECT action, set_hash, any_value(set_size) AS set_size,
                     min(actor) AS representative
              FROM {sets} WHERE set_size >= {int(c.min_set_size)}
                AND ({int(c.max_set_size)} = 0 OR set_size <= {int(c.max_set_size)})
              GROUP BY action, set_hash)),
    items AS MATERIALIZED (
        SELECT d.set_id, a.post_id
        FROM distinct_sets d JOIN {acts} a ON a.action = d.action AND a.actor = d.representative),
    signature AS (SELECT set_id, {minima} FROM items GROUP BY set_id),
    band_keys AS (
        SELECT s.set_id, d.action, unnest(range({int(c.bands)})) AS band,
               unnest([{band_keys}]) AS band_key
        FROM signature s JOIN distinct_sets d USING (set_id)),
    candidates AS (
        SELECT DISTINCT a.set_id AS id_a, b.set_id AS id_b
        FROM band_keys a JOIN band_keys b
          ON a.action = b.action AND a.band = b.band AND a.band_key = b.band_key
        WHERE a.set_id < b.set_id),
    shared AS (
        SELECT c.id_a, c.id_b, count(*) AS common
        FROM candidates c
        JOIN items x ON x.set_id = c.id_a
        JOIN items y ON y.set_id = c.id_b AND y.post_id = x.post_id
        GROUP BY ALL)
    SELECT a.action, least(a.set_hash, b.set_hash) AS set_a,
           greatest(a.set_hash, b.set_hash) AS set_b, s.common,
           s.common / (a.set_size + b.set_size - s.common) AS jaccard
    FROM shared s
    JOIN distinct_sets a ON a.set_id = s.id_a
    JOIN distinct_sets b ON b.set_id = s.id_b
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
