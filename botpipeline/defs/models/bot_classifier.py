"""models/bot_classifier: a learned bot classifier trained on one or more label sets, the
contender chosen by how well it transfers to label sets it never saw.

``model: auto`` (default) judges every contender of models/bot_classifier.py on every usable
label set present under incoming/labels/ (each one an *origin*): in-domain cross-validation
within each origin, and leave-one-origin-out (trained on the others, judged on the one left
out). The default is the best worst-case transfer AUC among contenders within 0.02 of the
best in-domain AUC on every origin; with one origin it is the benchmark's winner. That
contender is trained on the union of ``label_sets`` (each origin weighted equally) and its
flag threshold keeps the best *worst-origin* F1 over held-out scores. The fitted model is a
versioned folder (``<data dir>/models/bot_classifier/<version>/``: skops estimator, JSON
record with the scikit-learn version and sha256 of each file) made ``current`` for
scores/bot_probability. Metadata: the contenders' table, per-origin counts, held-out AUC and
precision / recall at the threshold, cross-validated ROC / PR AUC beside the same-feature
logistic regression, calibration, feature importance, plots.
"""

import dagster as dg
import polars as pl

from botpipeline.defs.metadata import markdown_preview, png_metadata
from botpipeline.defs.models import labelled_accounts
from botpipeline.defs.resources import Warehouse
from botpipeline.plots import calibration_plot, feature_importance, roc_and_pr_curves
from botpipeline.storage.model_store import ModelStore
from botpipeline.transforms.profile_features import model_features

FEATURES = dg.AssetKey(["features", "account_features"])


class BotModelConfig(dg.Config):
    label_sets: list[str] = []
    """Label sets under incoming/labels/ to train on, as one union with each set weighted
    equally; empty: ``label_set`` alone."""
    label_set: str = "generated_sample"
    """The label set to train on when ``label_sets`` is empty."""
    model: str = "auto"
    """A contender of models/bot_classifier.py (``ensemble``, ``logistic``,
    ``logistic_profile``, ...), or ``auto``: the best worst-case leave-one-origin-out AUC
    over every usable label set present."""
    candidates: list[str] = []
    """The contenders ``auto`` judges; empty: all."""
    seed: int = 0
    trees: int = 200
    folds: int = 5
    cv_repeats: int = 1
    """Shuffles of the cross-validation to average the reported AUCs over (each costs one more
    cross-validation); the first one's out-of-fold scores set the threshold and calibration."""
    threshold: float | None = None
    """Flag threshold on the probability; empty: the best worst-origin F1 over held-out
    scores (one origin: the best out-of-fold F1)."""
    positive_labels: list[str] = []
    """Labels that count as bots besides bot/automated/coordinated/harmful personas."""


def model_store(warehouse: Warehouse) -> ModelStore:
    return ModelStore(warehouse.outputs / "models")


def training_rows(accounts: labelled_accounts.LabelledAccounts) -> pl.DataFrame:
    """Model features, ``is_bot`` and ``origin`` (the label set) of a set's accounts."""
    from botpipeline.models.bot_classifier import ORIGIN

    return model_features(accounts.frame).with_columns(
        accounts.frame["positive"].alias("is_bot"), pl.lit(accounts.name).alias(ORIGIN))


def judgeable(rows: pl.DataFrame, folds: int) -> bool:
    """Enough bots and humans to cross-validate and to rank."""
    bots = int(rows["is_bot"].sum())
    return bots >= folds and rows.height - bots >= folds


def _selection_table(results: dict, chosen: str) -> pl.DataFrame:
    return pl.DataFrame([
        {"model": name + (" (chosen)" if name == chosen else ""),
         **{f"in-domain {o}": v for o, v in r["in_domain"].items()},
         **{f"left-out {o}": v for o, v in r["transfer"].items()},
         "worst transfer": r["worst_transfer"]}
        for name, r in results.items()])


@dg.asset(key=["models", "bot_classifier"], group_name="models", deps=[FEATURES],
          kinds={"sklearn"}, description=__doc__)
def bot_classifier(context: dg.AssetExecutionContext, config: BotModelConfig,
                   warehouse: Warehouse) -> dg.MaterializeResult:
    # scikit-learn (~1 s to import) only where a model is trained or judged
    from botpipeline.models.bot_classifier import (CANDIDATES, ORIGIN, TrainingConfig,
                                                   evaluate_candidates, select, train)

    positives = frozenset(w.lower() for w in config.positive_labels)
    names = list(dict.fromkeys(config.label_sets or [config.label_set]))
    unknown = [m for m in ([config.model] if config.model != "auto" else [])
               + config.candidates if m not in CANDIDATES]
    if unknown:
        raise dg.Failure(f"unknown model(s) {unknown}; choose from {sorted(CANDIDATES)} "
                         f"or 'auto'")
    with warehouse.get_connection() as con:
        warehouse.lake.register_views(con)
        accounts = {name: labelled_accounts.load(warehouse, con, name, positives)
                    for name in dict.fromkeys([*names, *labelled_accounts.available(warehouse)])}
    rows = {name: training_rows(a) for name, a in accounts.items()}
    for name in names:
        context.log.info(f"label set {name}: {accounts[name].summary}")
        if not judgeable(rows[name], config.folds):
            raise dg.Failure(f"cannot train on label set {name!r}: it needs at least "
                             f"{config.folds} bots and {config.folds} humans with features or "
                             f"a profile; got {accounts[name].summary}")
    usable = {name: r for name, r in rows.items() if judgeable(r, config.folds)}
    skipped = sorted(set(rows) - set(usable))
    if skipped:
        context.log.warning(f"label sets too small to judge on (fewer than {config.folds} "
                            f"bots or humans matched): {skipped}")
    settings = dict(seed=config.seed, trees=config.trees, folds=config.folds)
    selection = {}
    chosen = config.model
    if config.model == "auto":
        if len(usable) > 1:
            selection = evaluate_candidates(usable, config.candidates or None,
                                            TrainingConfig(**settings), log=context.log.info)
            chosen = select(selection)
            context.log.info(f"chosen by worst-case transfer over {sorted(usable)}: {chosen}")
        else:
            chosen = TrainingConfig.candidate
            context.log.info(f"one usable label set: no transfer to judge by; the default "
                             f"contender {chosen}")
    try:
        model = train(pl.concat([rows[n] for n in names], how="diagonal_relaxed"),
                      TrainingConfig(**settings, repeats=config.cv_repeats,
                                     threshold=config.threshold, candidate=chosen),
                      log=context.log.info,
                      judge_on={n: r for n, r in rows.items() if n not in names and r.height})
    except ValueError as exc:
        raise dg.Failure(f"cannot train on label sets {names}: {exc}") from exc
    path = model_store(warehouse).save(model)
    context.log.info(f"model {model.version} saved to {path} and made current")

    metrics = model.metrics
    per_origin = metrics["per_origin"]
    cross = {o: {k: v for k, v in m.items() if k != "held_out"}
             for o, m in per_origin.items() if m["held_out"] == "not trained on"}
    curves = {f"{o} (out-of-fold)": (
        part["is_bot"].to_numpy(), part["probability"].to_numpy())
        for (o,), part in model.out_of_fold.group_by(ORIGIN, maintain_order=True)}
    for o in cross:
        curves[o] = (rows[o]["is_bot"].to_numpy(), model.predict(rows[o]))
    plots = warehouse.outputs / "plots" / "models" / model.version
    importance = model.feature_importance()
    return dg.MaterializeResult(
        data_version=dg.DataVersion(model.version),
        metadata={
            "model_version": model.version, "model_path": dg.MetadataValue.path(str(path)),
            "model_fingerprint": model.fingerprint, "training_fingerprint": model.trained_on,
            "model": chosen, "model_choice": "auto" if config.model == "auto" else "given",
            "label_set": model.label_set, "label_sets": list(model.label_sets),
            "label_set_summary": {n: accounts[n].summary for n in names},
            "per_origin": per_origin, "threshold_rule": metrics["threshold_rule"],
            "per_origin_at_threshold": markdown_preview(pl.DataFrame([
                {"origin": o, "held out": m["held_out"], "accounts": m["accounts"],
                 "bots": m["positives"], "roc_auc": m["roc_auc"],
                 "left-out roc_auc": m.get("leave_one_origin_out_roc_auc"),
                 "precision": m["at_threshold"]["precision"],
                 "recall": m["at_threshold"]["recall"]}
                for o, m in per_origin.items()]), rows=20),
            "selection": selection,
            **({"selection_table": markdown_preview(_selection_table(selection, chosen),
                                                    rows=len(selection))} if selection else {}),
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
                                 f"calibration ({model.label_set}, out-of-fold)"),
                plots / "calibration.png"),
            "feature_importance_plot": png_metadata(
                feature_importance(importance, f"model {model.version}"),
                plots / "feature_importance.png"),
        })

