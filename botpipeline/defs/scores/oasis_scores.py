"""Detectors on OASIS runs directly, and their evaluation against the run's personas.

Per run (``oasis_runs`` partition), from features/simulated_account_features:
``scores/simulated_bot_scores`` (seed 003's 13 signals, same columns and run config as
scores/bot_scores), ``scores/simulated_rule_filter`` (seed 004, as scores/rule_filter),
``scores/simulated_bot_probability`` (the current learned model, as scores/bot_probability;
null with a warning while no model is trained) and ``scores/simulated_persona_evaluation``:
every detector beside each account's persona (harmful personas positive, benign and
recovery_support negative), with ROC AUC per detector overall and per persona. No server is
needed: the personas are the run's own (raw.oasis_personas).
"""

import dagster as dg
import duckdb
import polars as pl

from botpipeline.defs.features.simulated import run_frame
from botpipeline.defs.metadata import markdown_preview, png_metadata
from botpipeline.defs.models.bot_classifier import model_store
from botpipeline.defs.partitions import oasis_runs
from botpipeline.defs.resources import Warehouse
from botpipeline.defs.scores.bot_scores import BotScoreConfig, RuleFilterConfig
from botpipeline.transforms.bot_signals import bot_scores_sql, config_from
from botpipeline.transforms.label_evaluation import per_label
from botpipeline.transforms.oasis_scoring import (detector_reports, evaluation_frame,
                                                  persona_comparison)
from botpipeline.transforms.profile_features import model_features
from botpipeline.transforms.rule_filter import rule_filter_sql

FEATURES = dg.AssetKey(["features", "simulated_account_features"])
MODEL = dg.AssetKey(["models", "bot_classifier"])
EVALUATION = ["scores", "simulated_persona_evaluation"]
CHECK_ALL_SCORED = "every_detector_scored"


def _features(warehouse: Warehouse, run_id: str) -> pl.DataFrame:
    with warehouse.get_connection() as con:
        return run_frame(con, "features.simulated_account_features", run_id)


def _sql_over(frame: pl.DataFrame, sql_of) -> pl.DataFrame:
    con = duckdb.connect()
    try:
        con.register("_features", frame)
        return con.sql(sql_of("SELECT * FROM _features")).pl()
    finally:
        con.close()


def _write(warehouse: Warehouse, table: str, run_id: str, frame: pl.DataFrame) -> int:
    rows = warehouse.lake.write("scores", table, run_id, frame.with_columns(
        run_id=pl.lit(run_id)), partition_column="run_id", order_by="account_id")
    return rows


@dg.asset(key=["scores", "simulated_bot_scores"], group_name="scores", deps=[FEATURES],
          partitions_def=oasis_runs, kinds={"duckdb", "parquet"},
          description="Seed 003's 13 signals per account of an OASIS run (as scores/bot_scores).")
def simulated_bot_scores(context: dg.AssetExecutionContext, config: BotScoreConfig,
                         warehouse: Warehouse) -> dg.MaterializeResult:
    run_id = context.partition_key
    signals = config_from(config.model_dump())
    scores = _sql_over(_features(warehouse, run_id), lambda f: bot_scores_sql(f, signals))
    rows = _write(warehouse, "simulated_bot_scores", run_id, scores)
    warehouse.refresh_catalog(context.log)
    missing = (scores.select(pl.col("missing_inputs").explode()).drop_nulls()
               .group_by("missing_inputs").len().rows())
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "flagged": int(scores["flagged"].sum() or 0),
        "flag_threshold": signals.flag_threshold,
        "missing_inputs": dict(missing) or "none",
        "most_suspicious": markdown_preview(scores.sort(
            "total_score", "account_id", descending=[True, False]).select(
            "account_id", "username", "total_score", "significant_signals"))})


@dg.asset(key=["scores", "simulated_rule_filter"], group_name="scores", deps=[FEATURES],
          partitions_def=oasis_runs, kinds={"duckdb", "parquet"},
          description="Seed 004's rule filter per account of an OASIS run (as "
                      "scores/rule_filter).")
def simulated_rule_filter(context: dg.AssetExecutionContext, config: RuleFilterConfig,
                          warehouse: Warehouse) -> dg.MaterializeResult:
    run_id = context.partition_key
    rules = config.rules()
    verdicts = _sql_over(_features(warehouse, run_id), lambda f: rule_filter_sql(f, rules))
    rows = _write(warehouse, "simulated_rule_filter", run_id, verdicts)
    warehouse.refresh_catalog(context.log)
    reasons = (verdicts.select(pl.col("reasons").explode()).drop_nulls()
               .group_by("reasons").len().rows())
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "likely_bots": int(verdicts["is_likely_bot"].sum() or 0),
        "reasons": dict(reasons) or "none"})


@dg.asset(key=["scores", "simulated_bot_probability"], group_name="scores",
          deps=[FEATURES, MODEL], partitions_def=oasis_runs, kinds={"sklearn", "parquet"},
          description="The current learned model's bot probability per account of an OASIS "
                      "run (as scores/bot_probability); null, with a warning, while no model "
                      "is trained.")
def simulated_bot_probability(context: dg.AssetExecutionContext,
                              warehouse: Warehouse) -> dg.MaterializeResult:
    run_id = context.partition_key
    features = _features(warehouse, run_id)
    model = model_store(warehouse).current()
    base = features.select("platform", "account_id", "username")
    if model is None:
        context.log.warning("no bot model trained yet: materialize models/bot_classifier (job "
                            "bot_model), then this asset again")
        frame = base.with_columns(
            pl.lit(None, pl.Float64).alias("bot_probability"),
            pl.lit(None, pl.Boolean).alias("flagged"), pl.lit(None, pl.Float64).alias("threshold"),
            pl.lit(None, pl.String).alias("model_version"),
            pl.lit(None, pl.String).alias("trained_on"))
    else:
        probability = model.predict(model_features(features))
        frame = base.with_columns(
            pl.Series("bot_probability", probability, pl.Float64),
            pl.Series("flagged", probability >= model.threshold, pl.Boolean),
            pl.lit(model.threshold).alias("threshold"),
            pl.lit(model.version).alias("model_version"),
            pl.lit(model.label_set).alias("trained_on"))
    rows = _write(warehouse, "simulated_bot_probability", run_id, frame)
    warehouse.refresh_catalog(context.log)
    if model is None:
        return dg.MaterializeResult(metadata={"dagster/row_count": rows,
                                              "model_version": "none trained"})
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "model_version": model.version,
        "trained_on": model.label_set, "threshold": round(model.threshold, 4),
        "flagged": int(frame["flagged"].sum() or 0)})


@dg.asset(key=EVALUATION, group_name="scores", partitions_def=oasis_runs,
          deps=[dg.AssetKey(["scores", "simulated_bot_scores"]),
                dg.AssetKey(["scores", "simulated_rule_filter"]),
                dg.AssetKey(["scores", "simulated_bot_probability"]),
                dg.AssetKey(["raw", "oasis_posts"])],
          kinds={"polars", "parquet"}, description=__doc__,
          check_specs=[dg.AssetCheckSpec(CHECK_ALL_SCORED, asset=EVALUATION, description=(
              "Every detector scored the run (the learned model needs a trained model)."))])
def simulated_persona_evaluation(context: dg.AssetExecutionContext, warehouse: Warehouse):
    run_id = context.partition_key
    with warehouse.get_connection() as con:
        personas = run_frame(con, "raw.oasis_personas", run_id)
        scores = run_frame(con, "scores.simulated_bot_scores", run_id)
        rules = run_frame(con, "scores.simulated_rule_filter", run_id)
        learned = run_frame(con, "scores.simulated_bot_probability", run_id)
    frame = evaluation_frame(personas, scores, rules, learned)
    rows = _write(warehouse, "simulated_persona_evaluation", run_id, frame.drop(
        "significant_signals", "reasons"))
    warehouse.refresh_catalog(context.log)
    reports = detector_reports(frame)
    comparison = persona_comparison(frame)
    model_version = (learned["model_version"].drop_nulls().first()
                     if learned.height else None)
    from botpipeline.plots import scores_by_label

    yield dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "run_id": run_id,
        "accounts": frame.height, "positives": int(frame["positive"].sum()),
        "users_in_run": personas.height,
        "users_not_scored": personas.height - frame.height,
        "positive_rule": "harmful personas positive; benign and recovery_support negative",
        "roc_auc": {name: (r.get("roc_auc") if isinstance(r, dict) else r)
                    for name, r in reports.items()},
        "bot_score": reports["bot_score"], "rule_filter": reports["rule_filter"],
        "learned_model": reports["learned_model"],
        "learned_model_version": model_version or "none trained",
        "per_persona": markdown_preview(comparison, rows=30),
        "per_label_bot_score": markdown_preview(per_label(frame, "total_score", "flagged"),
                                                rows=30),
        "scores_by_persona": png_metadata(
            scores_by_label(frame, "total_score", config_from({}).flag_threshold,
                            f"bot scores by persona, run {run_id}"),
            warehouse.outputs / "plots" / "scores" / "simulated_persona_evaluation"
            / f"{run_id}.png"),
    })
    scored = model_version is not None
    yield dg.AssetCheckResult(
        check_name=CHECK_ALL_SCORED, passed=scored, severity=dg.AssetCheckSeverity.WARN,
        description=("bot score, rule filter and learned model all scored the run" if scored
                     else "no learned model scored the run: materialize "
                          "models/bot_classifier, then scores/simulated_bot_probability"),
        metadata={"learned_model_version": model_version or "none trained"})
