"""Detectors against known labels: simulated personas, or any labelled account list.

A label is *positive* (the account should be caught) when it names a harmful persona, or is
one of ``POSITIVE_WORDS`` in an analyst's list. Each detector (the 13-signal bot score, the rule
filter, membership of a coordinated group) gets ROC AUC where it has a score, precision,
recall and F1 at its flag, and the confusion table; per label, the score distribution.
"""

from __future__ import annotations

import polars as pl

from botpipeline.transforms.evaluation import precision_recall, roc_auc
from botpipeline.transforms.sharkey.personas import NAME_TEMPLATES

BENIGN_PERSONAS = frozenset({"benign", "recovery_support"})
HARMFUL_PERSONAS = frozenset(NAME_TEMPLATES) - BENIGN_PERSONAS
POSITIVE_WORDS = frozenset({"bot", "harmful", "automated", "coordinated", "1", "true", "yes"})
LABEL_COLUMNS = {"platform": pl.String, "account_id": pl.String, "label": pl.String,
                 "label_source": pl.String}


def is_positive(label: pl.Expr, extra: frozenset[str] = frozenset()) -> pl.Expr:
    words = list(HARMFUL_PERSONAS | POSITIVE_WORDS | extra)
    return label.str.to_lowercase().str.strip_chars().is_in(words)


def join_labels(accounts: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Accounts (platform, account_id, …) with their label; a label without a platform
    matches that id on any platform."""
    exact = accounts.join(labels.filter(pl.col("platform").is_not_null()),
                          on=["platform", "account_id"], how="inner")
    loose = accounts.join(labels.filter(pl.col("platform").is_null()).drop("platform"),
                          on="account_id", how="inner")
    return pl.concat([exact, loose], how="diagonal_relaxed").unique(
        ["platform", "account_id"], keep="first", maintain_order=True)


def detector_report(frame: pl.DataFrame, flag: str, score: str | None = None) -> dict:
    counts = precision_recall(frame, flag, "positive")
    tp, fp, fn = counts["true_positives"], counts["false_positives"], counts["false_negatives"]
    tn = frame.height - tp - fp - fn
    p, r = counts["precision"], counts["recall"]
    report = {"accounts": frame.height, "positives": int(frame["positive"].sum()),
              "precision": round(p, 4), "recall": round(r, 4),
              "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
              "confusion": {"true_positive": tp, "false_positive": fp,
                            "false_negative": fn, "true_negative": tn}}
    if score is not None:
        auc = roc_auc(frame, score, "positive")
        report["roc_auc"] = round(auc, 4) if auc is not None else None
    return report


def per_label(frame: pl.DataFrame, score: str, flag: str) -> pl.DataFrame:
    return (frame.group_by("label", "positive")
            .agg(pl.len().alias("accounts"), pl.col(score).mean().round(3).alias("mean_score"),
                 pl.col(score).median().alias("median_score"),
                 pl.col(score).quantile(0.9).alias("p90_score"),
                 pl.col(flag).cast(pl.Float64).mean().round(3).alias("flagged_share"))
            .sort(["positive", "mean_score"], descending=[True, True]))
