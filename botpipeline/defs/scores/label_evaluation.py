"""scores/label_evaluation: the detectors against accounts whose truth is known.

Labels come from (1) the personas of OASIS runs published to Sharkey and collected back
(``sharkey.accounts``: harmful personas are positives, benign and recovery_support negatives)
and (2) every label set an analyst drops in ``incoming/labels/`` (readers/label_sets.py:
``user_id,label`` and an optional ``platform``); an analyst's label wins over a persona. For the date's labelled accounts: ROC AUC of the 13-signal bot score,
precision / recall / F1 and the confusion table of its flag, of the rule filter, and of
membership of a coordinated group; per-label score distributions as a table and a plot.
"""

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl

from botpipeline.defs.conversations.reconstruction import has_table
from botpipeline.defs.metadata import markdown_preview, png_metadata
from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.resources import Warehouse
from botpipeline.readers.label_sets import LabelSet, LabelSetError, discover, read_label_set
from botpipeline.transforms.bot_signals import SignalConfig
from botpipeline.transforms.label_evaluation import (LABEL_COLUMNS, detector_report,
                                                     is_positive, join_labels, per_label)

DEPS = [dg.AssetKey(["scores", "bot_scores"]), dg.AssetKey(["scores", "rule_filter"]),
        dg.AssetKey(["coordination", "groups"])]


class LabelEvaluationConfig(dg.Config):
    label_files: list[str] = []
    """More CSV files (user_id,label[,platform]) besides incoming/labels/*.csv."""
    positive_labels: list[str] = []
    """Labels that count as positive besides the harmful personas and bot/harmful/1/true."""


def analyst_labels(sets: list[LabelSet]) -> pl.DataFrame:
    frames = []
    for label_set in sets:
        try:
            frames.append(read_label_set(label_set).labels)
        except LabelSetError as exc:
            raise dg.Failure(str(exc)) from exc
    return (pl.concat(frames, how="vertical_relaxed") if frames
            else pl.DataFrame(schema=LABEL_COLUMNS))


@dg.asset(key=["scores", "label_evaluation"], group_name="scores", deps=DEPS,
          partitions_def=daily_partitions, kinds={"polars"}, description=__doc__)
def label_evaluation(context: dg.AssetExecutionContext, config: LabelEvaluationConfig,
                     warehouse: Warehouse) -> dg.MaterializeResult:
    key = context.partition_key
    sets = list(discover(warehouse.incoming("labels")).values()) + \
        [LabelSet(Path(p).stem, (Path(p),)) for p in config.label_files]
    labels = [analyst_labels(sets)]
    with warehouse.get_connection() as con:
        if has_table(con, "sharkey", "accounts"):
            labels.append(con.sql(
                "SELECT 'sharkey' AS platform, server_user_id AS account_id, persona AS label, "
                "'sharkey:' || run_id AS label_source FROM sharkey.accounts "
                "WHERE server_user_id IS NOT NULL").pl())
        scores = con.sql(f"""
            SELECT s.platform, s.account_id, s.username, s.total_score, s.flagged,
                   coalesce(r.is_likely_bot, false) AS rule_filter,
                   g.group_id IS NOT NULL AS in_coordinated_group
            FROM scores.bot_scores s
            LEFT JOIN scores.rule_filter r USING (collection_date, platform, account_id)
            LEFT JOIN (SELECT DISTINCT actor, first(group_id) AS group_id
                       FROM coordination.groups WHERE collection_date = DATE '{key}'
                       GROUP BY actor) g ON g.actor = s.account_id
            WHERE s.collection_date = DATE '{key}'""").pl()
    extra = frozenset(w.lower() for w in config.positive_labels)
    frame = (join_labels(scores, pl.concat(labels, how="vertical_relaxed"))
             .with_columns(is_positive(pl.col("label"), extra).alias("positive")))
    rows = warehouse.lake.write("scores", "label_evaluation", key, frame.with_columns(
        pl.lit(date.fromisoformat(key)).alias("collection_date")))
    warehouse.refresh_catalog(context.log)
    if frame.height == 0:
        context.log.info("no labelled account among the date's scored accounts")
        return dg.MaterializeResult(metadata={"dagster/row_count": 0,
                                              "scored_accounts": scores.height})
    threshold = SignalConfig().flag_threshold
    from botpipeline.plots import scores_by_label

    by_label = per_label(frame, "total_score", "flagged")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "scored_accounts": scores.height,
        "label_sources": dict(frame.group_by("label_source").len().iter_rows()),
        "bot_score": detector_report(frame, "flagged", "total_score"),
        "rule_filter": detector_report(frame, "rule_filter"),
        "coordinated_group_member": detector_report(frame, "in_coordinated_group"),
        "per_label": markdown_preview(by_label, rows=30),
        "scores_by_label": png_metadata(
            scores_by_label(frame, "total_score", threshold, f"bot scores by label {key}"),
            warehouse.outputs / "plots" / "scores" / "label_evaluation" / f"{key}.png"),
    })
