"""scores/model_evaluation: the learned score, the 13-signal total and the rule filter, side by
side, on one label set (a partition per set under incoming/labels/).

Every labelled account with features or a profile is scored by the current model and by the
heuristics with their default settings (defs/models/labelled_accounts.py). On the set the model
was trained on (any of its label sets), the learned score is its out-of-fold probability,
never an in-sample one. The
metadata holds ROC AUC, PR AUC, precision / recall / F1 and the confusion table at each
detector's flag, a breakdown per platform and feature source, and ROC / PR curves.
"""

import dagster as dg
import polars as pl

from botpipeline.defs.metadata import markdown_preview, png_metadata
from botpipeline.defs.models import labelled_accounts
from botpipeline.defs.models.bot_classifier import model_store
from botpipeline.defs.partitions import label_sets
from botpipeline.defs.resources import Warehouse
from botpipeline.plots import roc_and_pr_curves
from botpipeline.transforms.label_evaluation import detector_report
from botpipeline.transforms.profile_features import model_features

MODEL = dg.AssetKey(["models", "bot_classifier"])
# name -> (score column, flag column)
DETECTORS = {"learned": ("bot_probability", "learned_flag"),
             "bot_score_13_signals": ("total_score", "score_flag"),
             "rule_filter": ("rule_flag", "rule_flag")}


class ModelEvaluationConfig(dg.Config):
    positive_labels: list[str] = []
    """Labels that count as bots besides bot/automated/coordinated/harmful personas."""


def _report(frame: pl.DataFrame) -> dict:
    # scikit-learn (~1 s to import) only where a model is trained or judged
    from botpipeline.models.bot_classifier import ranking_metrics

    y = frame["positive"].to_numpy()
    return {name: detector_report(frame, flag, score)
            | {"pr_auc": ranking_metrics(y, frame[score].cast(pl.Float64).to_numpy())["pr_auc"]}
            for name, (score, flag) in DETECTORS.items()}


def _per_source(frame: pl.DataFrame) -> pl.DataFrame:
    from botpipeline.models.bot_classifier import ranking_metrics

    rows = []
    for (platform, source), part in frame.group_by("platform", "feature_source",
                                                   maintain_order=True):
        y = part["positive"].to_numpy()
        row = {"platform": platform, "feature_source": source, "accounts": part.height,
               "positives": int(y.sum())}
        for name, (score, _) in DETECTORS.items():
            row[f"{name}_roc_auc"] = ranking_metrics(
                y, part[score].cast(pl.Float64).to_numpy())["roc_auc"]
        rows.append(row)
    return pl.DataFrame(rows)


@dg.asset(key=["scores", "model_evaluation"], group_name="models", deps=[MODEL],
          partitions_def=label_sets, kinds={"sklearn", "parquet"}, description=__doc__)
def model_evaluation(context: dg.AssetExecutionContext, config: ModelEvaluationConfig,
                     warehouse: Warehouse) -> dg.MaterializeResult:
    from botpipeline.models.bot_classifier import ORIGIN

    name = context.partition_key
    model = model_store(warehouse).current()
    if model is None:
        raise dg.Failure("no bot model trained yet: materialize models/bot_classifier first")
    with warehouse.get_connection() as con:
        warehouse.lake.register_views(con)
        accounts = labelled_accounts.load(warehouse, con, name, frozenset(
            w.lower() for w in config.positive_labels))
    frame = accounts.frame
    in_domain = name in model.label_sets and model.out_of_fold is not None
    probability = pl.Series("bot_probability", model.predict(
        model_features(frame)), pl.Float64)
    frame = frame.with_columns(probability)
    if in_domain:  # the training rows: their out-of-fold probability, not an in-sample one
        frame = frame.join(model.out_of_fold.filter(pl.col(ORIGIN) == name).select(
            "platform", "account_id", pl.col("probability").alias("_oof")),
            on=["platform", "account_id"], how="left", maintain_order="left").with_columns(
            pl.coalesce("_oof", "bot_probability").alias("bot_probability")).drop("_oof")
    frame = frame.with_columns((pl.col("bot_probability") >= model.threshold)
                               .alias("learned_flag"))
    out = frame.select(
        pl.lit(name).alias("label_set"), "platform", "account_id", "username", "label",
        "label_source", "positive", "feature_source", "bot_probability", "learned_flag",
        "total_score", "score_flag", "rule_flag",
        pl.lit(model.version).alias("model_version"), pl.lit(in_domain).alias("out_of_fold"))
    with warehouse.transaction(context) as lake:
        rows = lake.write("scores", "model_evaluation", name, out,
                          partition_column="label_set", order_by=["platform", "account_id"])
        if accounts.quarantine.height:
            lake.write("scores", "label_quarantine", name,
                       accounts.quarantine, partition_column="label_set")
        context.log.warning(f"{accounts.quarantine.height} bad lines in label set {name} "
                            f"quarantined (scores.label_quarantine)")
    warehouse.refresh_catalog(context.log)
    metadata = {"dagster/row_count": rows, "model_version": model.version,
                "model_trained_on": model.label_set, "model": model.candidate,
                "in_domain_out_of_fold": in_domain,
                "label_set_summary": accounts.summary, "threshold": round(model.threshold, 4)}
    if frame.height:
        report = _report(frame)
        metadata["detectors"] = report
        metadata["side_by_side"] = markdown_preview(pl.DataFrame([
            {"detector": d, "roc_auc": r.get("roc_auc"), "pr_auc": r["pr_auc"],
             "precision": r["precision"], "recall": r["recall"], "f1": r["f1"]}
            for d, r in report.items()]))
        metadata["per_source"] = markdown_preview(_per_source(frame), rows=30)
        y = frame["positive"].to_numpy()
        metadata["roc_pr_curves"] = png_metadata(roc_and_pr_curves(
            {d: (y, frame[s].cast(pl.Float64).to_numpy()) for d, (s, _) in DETECTORS.items()},
            f"{name}: model {model.version} vs heuristics"),
            warehouse.outputs / "plots" / "models" / "evaluation" / f"{name}.png")
    return dg.MaterializeResult(metadata=metadata)
