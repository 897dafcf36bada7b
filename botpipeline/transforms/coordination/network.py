"""From an actions relation to the scored co-action network, in one DuckDB connection."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from botpipeline.transforms.coordination.co_action import (CoActionConfig, action_counts_sql,
                                                           bucketed_actions_sql,
                                                           co_action_codes_sql,
                                                           decode_edges_sql,
                                                           weight_totals_sql)
from botpipeline.transforms.coordination.null_model import NullModelConfig, score_edges


@dataclass
class ScoredNetwork:
    edges: pl.DataFrame
    """Edges of weight >= ``keep_min_weight``, with the null model's verdict."""
    counts: pl.DataFrame
    """Actions per (kind, actor)."""
    totals: pl.DataFrame
    """Per kind: every edge (weight >= 1) and their total weight."""


def scored_network(con: duckdb.DuckDBPyConnection, actions: str, config: CoActionConfig,
                   null: NullModelConfig = NullModelConfig(), keep_min_weight: int = 2,
                   actions_per_chunk: int = 1_000_000, log=None) -> ScoredNetwork:
    """All edges are computed in DuckDB, in slices of about ``actions_per_chunk`` actions'
    worth of first accounts; only edges of weight >= ``keep_min_weight`` reach Python. Single
    coincidences (weight 1) are most edges of a busy day, never significant (``min_weight`` >=
    2) and only counted and summed for the null model."""
    total = con.sql(f"SELECT count(*) FROM {actions}").fetchall()[0][0]
    chunks = max(1, -(-total // actions_per_chunk))
    kept, totals = [], []
    # Bucketed and coded once: every slice joins integers against the same table; only the
    # kept edges are decoded back to account and target strings.
    con.execute("CREATE OR REPLACE TEMP TABLE _bucketed AS "
                + bucketed_actions_sql(actions, config, chunks))
    for index in range(chunks):
        con.execute("CREATE OR REPLACE TEMP TABLE _edges AS "
                    + co_action_codes_sql("_bucketed", (index, chunks)))
        totals.append(con.sql(weight_totals_sql("_edges")).pl())
        kept.append(con.sql(f"SELECT * FROM _edges WHERE weight >= {int(keep_min_weight)}").pl())
        if log is not None and chunks > 1:
            log.info(f"co-action edges: slice {index + 1} of {chunks} done")
    con.register("_kept_codes", pl.concat(kept))
    kept = [con.sql(decode_edges_sql("_kept_codes", "_bucketed")).pl()]
    con.unregister("_kept_codes")
    con.execute("DROP TABLE IF EXISTS _edges; DROP TABLE IF EXISTS _bucketed")
    totals = (pl.concat(totals).group_by("kind")
              .agg(pl.col("edges").sum(), pl.col("total_weight").sum()).sort("kind"))
    counts = con.sql(action_counts_sql(actions)).pl()
    return ScoredNetwork(score_edges(pl.concat(kept), counts, totals, null), counts, totals)
