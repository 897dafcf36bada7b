"""Scoring an OASIS run directly (no server): its feature frame and the persona evaluation.

The run is one partition: every post of the run is "in the partition", measured at the end of
the day of its last post (simulated time, ``StepClock``). The frame is the daily frame's SQL
(transforms/account_features.py) over the run's core posts and accounts, with one difference:
``posts_24h`` is the account's busiest 24 hours of simulated time (a run spans many days, and
"posts in 24 h" over the whole run would count all of them). OASIS says nothing about account
age, likes, verification or avatars: those inputs stay null and the signals that need them
list them in ``missing_inputs``. No toxicity is scored for runs, so ``inflammatory_share`` is
null too.

The persona evaluation puts every detector beside the persona label, one row per account:
harmful personas are positives, ``benign`` and ``recovery_support`` negatives (as
scores/label_evaluation does after read-back), with ROC AUC per detector overall and per
persona (that persona's accounts against the negatives).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import polars as pl

from botpipeline.transforms.account_features import RAPID_COMMENT_SECONDS, account_features_sql
from botpipeline.transforms.evaluation import roc_auc
from botpipeline.transforms.label_evaluation import BENIGN_PERSONAS, detector_report, is_positive

# detector -> (flag column, score column); the rule filter has only its verdict, so its ROC
# AUC is that of the flag (as scores/rule_filter reports it against planted truth).
DETECTORS = {"bot_score": ("flagged", "total_score"),
             "rule_filter": ("rule_flag", "rule_flag"),
             "learned_model": ("learned_flag", "bot_probability")}


def reference_date(posts: pl.DataFrame) -> str:
    last = posts["created_at"].max()
    if last is None:
        raise ValueError("the run has no timed posts to score")
    return last.date().isoformat()


def run_features(posts: pl.DataFrame, accounts: pl.DataFrame,
                 rapid_seconds: int = RAPID_COMMENT_SECONDS) -> pl.DataFrame:
    """The feature frame of one run (columns of features.account_features, less
    collection_date), from its core posts and accounts."""
    day = reference_date(posts)
    con = duckdb.connect()
    try:
        con.register("_run_posts", posts)
        con.register("_run_accounts", accounts)
        con.execute("CREATE SCHEMA core")
        con.execute(f"CREATE VIEW core.posts AS SELECT *, DATE '{day}' AS collection_date "
                    f"FROM _run_posts")
        con.execute(f"CREATE VIEW core.accounts AS SELECT *, DATE '{day}' AS collection_date "
                    f"FROM _run_accounts")
        sql = account_features_sql(day, 0, toxicity=False, rapid_seconds=rapid_seconds)
        busiest = """
            SELECT platform, author_id AS account_id, max(n)::BIGINT AS busiest_24h FROM (
                SELECT platform, author_id, count(*) OVER (
                    PARTITION BY platform, author_id ORDER BY created_at
                    RANGE BETWEEN CURRENT ROW AND INTERVAL 24 HOURS FOLLOWING) AS n
                FROM core.posts WHERE author_id IS NOT NULL AND created_at IS NOT NULL)
            GROUP BY ALL"""
        return con.sql(f"""
            SELECT f.* REPLACE (coalesce(b.busiest_24h, 0) AS posts_24h)
            FROM ({sql}) f LEFT JOIN ({busiest}) b USING (platform, account_id)
            ORDER BY f.platform, f.account_id""").pl()
    finally:
        con.close()


def end_of_day(day: str) -> datetime:
    return datetime.fromisoformat(day) + timedelta(days=1)


def evaluation_frame(personas: pl.DataFrame, scores: pl.DataFrame,
                     rules: pl.DataFrame, learned: pl.DataFrame | None) -> pl.DataFrame:
    """One row per scored account with its persona: persona, positive, total_score, flagged,
    rule_flag, bot_probability, learned_flag (null where no model scored the run)."""
    frame = (scores.select("account_id", "username", "total_score", "flagged",
                           "significant_signals")
             .join(rules.select("account_id", pl.col("is_likely_bot").alias("rule_flag"),
                                "reasons"), on="account_id", how="left")
             .join(personas.select(pl.col("user_id").alias("account_id"), "persona",
                                   "persona_match"), on="account_id", how="left"))
    if learned is not None and learned.height:
        frame = frame.join(learned.select("account_id", "bot_probability",
                                          pl.col("flagged").alias("learned_flag")),
                           on="account_id", how="left")
    else:
        frame = frame.with_columns(pl.lit(None, pl.Float64).alias("bot_probability"),
                                   pl.lit(None, pl.Boolean).alias("learned_flag"))
    return frame.with_columns(
        pl.col("rule_flag").fill_null(False),
        pl.col("persona").fill_null("(unknown)").alias("label"),
        is_positive(pl.col("persona").fill_null("")).alias("positive"))


def detector_reports(frame: pl.DataFrame) -> dict[str, dict | str]:
    """detector_report (precision, recall, F1, confusion, ROC AUC) per detector."""
    out: dict[str, dict | str] = {}
    for name, (flag, score) in DETECTORS.items():
        if frame[score].null_count() == frame.height:
            out[name] = "not scored"
            continue
        out[name] = detector_report(frame.drop_nulls(score), flag, score)
    return out


def persona_comparison(frame: pl.DataFrame) -> pl.DataFrame:
    """Per persona: accounts, mean score / share flagged for each detector, and each scored
    detector's ROC AUC for that persona's accounts against the negatives (harmful personas
    only)."""
    table = (frame.group_by("label", "positive")
             .agg(pl.len().alias("accounts"),
                  pl.col("total_score").mean().round(3).alias("mean_total_score"),
                  pl.col("flagged").cast(pl.Float64).mean().round(3).alias("score_flagged"),
                  pl.col("rule_flag").cast(pl.Float64).mean().round(3).alias("rule_flagged"),
                  pl.col("bot_probability").mean().round(3).alias("mean_bot_probability"),
                  pl.col("learned_flag").cast(pl.Float64).mean().round(3)
                  .alias("learned_flagged")))
    negatives = frame.filter(pl.col("label").is_in(list(BENIGN_PERSONAS)))
    aucs = []
    for label in table.filter(pl.col("positive"))["label"].to_list():
        subset = pl.concat([frame.filter(pl.col("label") == label), negatives])
        row = {"label": label}
        for name, (_, score) in DETECTORS.items():
            if subset[score].null_count():
                row[f"auc_{name}"] = None
            else:
                auc = roc_auc(subset, score, "positive")
                row[f"auc_{name}"] = round(auc, 3) if auc is not None else None
        aucs.append(row)
    schema = {"label": pl.String, **{f"auc_{n}": pl.Float64 for n in DETECTORS}}
    auc_frame = pl.DataFrame([{k: r.get(k) for k in schema} for r in aucs], schema=schema)
    return (table.join(auc_frame, on="label", how="left")
            .sort(["positive", "mean_total_score"], descending=[True, True]))
