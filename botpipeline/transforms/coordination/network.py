"""From an actions relation to the scored co-action network, in one DuckDB connection."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from botpipeline.transforms.coordination.co_action import (CoActionConfig, action_counts_sql,
                                                           co_action_edges_sql,
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
                   null: NullModelConfig = NullModelConfig(),
                   keep_min_weight: int = 2) -> ScoredNetwork:
    """All edges are computed in DuckDB (spilling to disk if need be); only edges of weight >=
    ``keep_min_weight`` reach Python. Single coincidences (weight 1) are most edges of a busy
    day, never significant (``min_weight`` >= 2) and only summed for the null model."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _edges AS {co_action_edges_sql(actions, config)}")
    totals = con.sql(weight_totals_sql("_edges")).pl()
    kept = con.sql(f"SELECT * FROM _edges WHERE weight >= {int(keep_min_weight)}").pl()
    con.execute("DROP TABLE _edges")
    counts = con.sql(action_counts_sql(actions)).pl()
    return ScoredNetwork(score_edges(kept, counts, totals, null), counts, totals)
