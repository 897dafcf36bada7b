"""A label set's accounts as feature-frame rows, ready for the model and the heuristics.

An account the pipeline has seen gets its newest row of features.account_features (profile and
behaviour, found in DuckDB over every date without loading other accounts into Python); an
account the set describes only by its profile file gets the same profile columns
(transforms/account_features.profile_sql) with no behaviour. Labelled accounts found in
neither are counted as unmatched. Heuristic verdicts are computed here too, with the default
settings, by the same SQL the daily scores use, so the learned score, the 13-signal total and
the rule filter are judged on exactly the same accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import duckdb
import polars as pl

from botpipeline.defs.conversations.reconstruction import has_table
from botpipeline.defs.resources import Warehouse
from botpipeline.readers.label_sets import (LabelSetError, discover, read_label_set)
from botpipeline.transforms.account_features import profile_only_sql
from botpipeline.transforms.bot_signals import SignalConfig, bot_scores_sql
from botpipeline.transforms.label_evaluation import is_positive
from botpipeline.transforms.rule_filter import RuleConfig, rule_filter_sql

LABELS_FOLDER = "labels"


@dataclass
class LabelledAccounts:
    name: str
    frame: pl.DataFrame        # feature-frame columns + label, positive, feature_source
    labelled: int              # accounts the set lists
    unmatched: pl.DataFrame    # listed accounts with neither features nor a profile
    quarantine: pl.DataFrame   # bad label or profile lines

    @property
    def summary(self) -> dict:
        return {"labelled": self.labelled, "matched": self.frame.height,
                "positives": int(self.frame["positive"].sum()),
                "unmatched": self.unmatched.height, "quarantined": self.quarantine.height,
                "feature_sources": dict(self.frame.group_by("feature_source").len()
                                        .sort("feature_source").iter_rows())}


def available(warehouse: Warehouse) -> list[str]:
    return sorted(discover(warehouse.incoming(LABELS_FOLDER)))


def load(warehouse: Warehouse, con: duckdb.DuckDBPyConnection, name: str,
         positive_labels: frozenset[str] = frozenset()) -> LabelledAccounts:
    sets = discover(warehouse.incoming(LABELS_FOLDER))
    if name not in sets:
        raise dg.Failure(f"no label set {name!r} under {warehouse.incoming(LABELS_FOLDER)} "
                         f"(found: {sorted(sets) or 'none'}); a set is a folder of "
                         f"user_id,label CSVs with optional profile JSON lines")
    try:
        data = read_label_set(sets[name])
    except LabelSetError as exc:
        raise dg.Failure(str(exc)) from exc
    con.register("_labels", data.labels)
    con.register("_label_profiles", data.profiles)
    # "platform IS NULL" in a label list matches the id on any platform.
    match = ("l.account_id = f.account_id AND (l.platform IS NULL OR l.platform = f.platform)")
    # Profiles are measured when observed, else at the newest account creation in the file.
    reference = "coalesce(observed_at, max(created_at) OVER ())"
    profiles = f"""
        SELECT f.*, l.label, l.label_source, 'profile file' AS feature_source
        FROM ({profile_only_sql("SELECT * FROM _label_profiles", reference)}) f
        JOIN _labels l ON {match}"""
    if has_table(con, "features", "account_features"):
        # Seen accounts first (newest feature row); a profile only for the others.
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _labelled AS
            SELECT f.* EXCLUDE (collection_date), l.label, l.label_source,
                   'features.account_features' AS feature_source
            FROM features.account_features f JOIN _labels l ON {match}
            QUALIFY row_number() OVER (PARTITION BY f.platform, f.account_id
                                       ORDER BY f.collection_date DESC) = 1""")
        con.execute(f"""
            INSERT INTO _labelled BY NAME SELECT * FROM ({profiles}) p
            WHERE NOT EXISTS (SELECT 1 FROM _labelled s
                              WHERE s.platform = p.platform AND s.account_id = p.account_id)""")
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _labelled AS {profiles}")
    verdicts = con.sql(f"""
        SELECT a.*, s.total_score, s.flagged AS score_flag, r.is_likely_bot AS rule_flag
        FROM _labelled a
        JOIN ({bot_scores_sql("SELECT * FROM _labelled", SignalConfig())}) s
          USING (platform, account_id)
        JOIN ({rule_filter_sql("SELECT * FROM _labelled", RuleConfig())}) r
          USING (platform, account_id)
        ORDER BY a.platform, a.account_id""").pl()
    unmatched = con.sql(f"""
        SELECT * FROM _labels l
        WHERE NOT EXISTS (SELECT 1 FROM _labelled f WHERE {match})""").pl()
    for relation in ("_labels", "_label_profiles"):
        con.unregister(relation)
    con.execute("DROP TABLE _labelled")
    frame = verdicts.with_columns(
        is_positive(pl.col("label"), positive_labels).alias("positive"),
        pl.col("rule_flag").fill_null(False), pl.col("score_flag").fill_null(False))
    return LabelledAccounts(name, frame, data.labels.height, unmatched, data.quarantine)
