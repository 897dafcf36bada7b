"""Scores against known labels: ROC AUC and precision/recall, vectorized with polars."""

from __future__ import annotations

import polars as pl


def roc_auc(frame: pl.DataFrame, score: str, label: str) -> float | None:
    """ROC AUC by the rank-sum (Mann-Whitney) formula; ties get average ranks.

    ``label`` is boolean (True = bot). None when one class is absent.
    """
    data = frame.select(pl.col(score).cast(pl.Float64).fill_null(0.0),
                        pl.col(label).cast(pl.Boolean))
    positives = data[label].sum()
    negatives = data.height - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = data.with_columns(pl.col(score).rank("average").alias("_rank"))
    rank_sum = ranks.filter(pl.col(label))["_rank"].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def precision_recall(frame: pl.DataFrame, predicted: str, label: str) -> dict[str, float]:
    data = frame.select(pl.col(predicted).cast(pl.Boolean).fill_null(False),
                        pl.col(label).cast(pl.Boolean))
    tp = data.filter(pl.col(predicted) & pl.col(label)).height
    fp = data.filter(pl.col(predicted) & ~pl.col(label)).height
    fn = data.filter(~pl.col(predicted) & pl.col(label)).height
    return {"precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0,
            "true_positives": tp, "false_positives": fp, "false_negatives": fn}
