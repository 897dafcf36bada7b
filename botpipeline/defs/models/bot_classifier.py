"""models/bot_classifier: a learned bot classifier trained on one label set.

Trains models/bot_classifier.py's calibrated extra-trees + gradient-boosting vote on the label
set named in the run config (default ``generated_sample``: the shipped sample's planted truth),
with model features from the feature frame or the set's profile files. The fitted model is a
versioned file (``<data dir>/models/bot_classifier/<version>.pkl``, version = the first 12 hex
of its fingerprint) and becomes ``current`` for scores/bot_probability. The metadata records
the feature list, the training-set fingerprint, cross-validated ROC / PR AUC beside a logistic
baseline on the same folds (averaged over ``cv_repeats`` shuffles, with the model's gain per
shuffle), precision / recall at the threshold, calibration, feature importance, and ROC AUC on
every other label set (cross-dataset), with plots.
"""

import dagster as dg
import polars as pl

from botpipeline.defs.metadata import png_metadata
from botpipeline.defs.models import labelled_accounts
from botpipeline.defs.resources import Warehouse
from botpipeline.models.bot_classifier import TrainingConfig, ranking_metrics, train
from botpipeline.plots import calibration_plot, feature_importance, roc_and_pr_curves
from botpipeline.storage.model_store import ModelStore
from botpipeline.transforms.profile_features import model_features

FEATURES = dg.AssetKey(["features", "account_features"])


class BotModelConfig(dg.Config):
    label_set: str = "generated_sample"
    """The label set under incoming/labels/ to train on."""
    seed: int = 0
    trees: int = 200
    folds: int = 5
    cv_repeats: int = 1
    """Shuffles of the cross-validation to average the reported AUCs over (each costs one more
    cross-validation); the first one's out-of-fold scores set the threshold and calibration."""
    threshold: float | None = None
    """Flag threshold on the probability; empty: the best out-of-fold F1."""
    positive_labels: list[str] = []
    """Labels that count as bots besides bot/automated/coordinated/harmful personas."""


def model_store(warehouse: Warehouse) -> ModelStore:
    return ModelStore(warehouse.data_path / "models")


def training_rows(accounts: labelled_accounts.LabelledAccounts) -> pl.DataFrame:
    return model_features(accounts.frame).with_columns(accounts.frame["positive"].alias("is_bot"))


@dg.asset(key=["models", "bot_classifier"], group_name="models", deps=[FEATURES],
          kinds={"sklearn"}, description=__doc__)
def bot_classifier(context: dg.AssetExecutionContext, config: BotModelConfig,
                   warehouse: Warehouse) -> dg.MaterializeResult:
    positives = frozenset(w.lower() for w in config.positive_labels)
    with warehouse.get_connection() as con:
        warehouse.lake.register_views(con)
        accounts = labelled_accounts.load(warehouse, con, config.label_set, positives)
        others = [labelled_accounts.load(warehouse, con, name, positives)
                  for name in labelled_accounts.available(warehouse) if name != config.label_set]
    context.log.info(f"label set {config.label_set}: {accounts.summary}")
    rows = training_rows(accounts)
    try:
        model = train(rows, TrainingConfig(seed=config.seed, trees=config.trees,
                                           folds=config.folds, repeats=config.cv_repeats,
                                           threshold=config.threshold),
                      label_set=config.label_set, log=context.log.info)
    except ValueError as exc:
        raise dg.Failure(f"cannot train on label set {config.label_set!r}: {exc}") from exc
    path = model_store(warehouse).save(model)
    context.log.info(f"model {model.version} saved to {path} and made current")

    cross = {}
    curves = {f"{config.label_set} (out-of-fold)": (
        model.out_of_fold["is_bot"].to_numpy(), model.out_of_fold["probability"].to_numpy())}
    for other in others:
        if other.frame.height == 0:
            continue
        p = model.predict(model_features(other.frame))
        y = other.frame["positive"].to_numpy()
        cross[other.name] = {"accounts": other.frame.height, "positives": int(y.sum()),
                             **ranking_metrics(y, p)}
        curves[other.name] = (y, p)
    plots = warehouse.data_path / "plots" / "models" / model.version
    metrics = model.metrics
    importance = model.feature_importance()
    return dg.MaterializeResult(
        data_version=dg.DataVersion(model.version),
        metadata={
            "model_version": model.version, "model_path": dg.MetadataValue.path(str(path)),
            "model_fingerprint": model.fingerprint, "training_fingerprint": model.trained_on,
            "label_set": config.label_set, "label_set_summary": accounts.summary,
            "features": list(model.features), "sklearn_version": model.sklearn_version,
            "accounts": metrics["accounts"], "positives": metrics["positives"],
            "cv_roc_auc": metrics["cross_validated"]["roc_auc"],
            "cv_pr_auc": metrics["cross_validated"]["pr_auc"],
            "logistic_baseline_cv_roc_auc": metrics["logistic_baseline"]["roc_auc"],
            "gain_over_logistic": metrics["gain_over_logistic"],
            "cv_repeats": config.cv_repeats,
            "threshold": round(model.threshold, 4),
            "at_threshold": metrics["at_threshold"], "calibration": metrics["calibration"],
            "cross_dataset": cross,
            "feature_importance": importance,
            "roc_pr_curves": png_metadata(
                roc_and_pr_curves(curves, f"model {model.version}"), plots / "curves.png"),
            "calibration_plot": png_metadata(
                calibration_plot(metrics["calibration"]["predicted"],
                                 metrics["calibration"]["observed"],
                                 f"calibration ({config.label_set}, out-of-fold)"),
                plots / "calibration.png"),
            "feature_importance_plot": png_metadata(
                feature_importance(importance, f"model {model.version}"),
                plots / "feature_importance.png"),
        })

