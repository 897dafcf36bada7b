"""Benchmark: how well the learned bot model ranks labelled accounts, beside the baselines.

    python benchmarks/bot_model_quality.py [--labels ../shared/data/labeled_twibot22_sample]
        [--folds 5] [--repeats 6] [--trees 400] [--judge-on data --judge-set generated_sample]

The label set (default: the 1,000 TwiBot-22 profiles, 146 bots) goes through the project's
own path: read as a label set, profile features by the feature frame's SQL, the 13-signal total
and the rule filter by the daily SQL with default settings. Then, on the same repeated
stratified folds:
  learned model    botpipeline.models.bot_classifier (calibrated extra-trees + boosting vote)
  logistic, same   logistic regression on the same features, log-scaled
  logistic, 6 log  logistic regression on six profile counts and flags, log-scaled
  logistic, 6 raw  the same six, raw (the "simple logistic regression" of the issue)
  13-signal total  the heuristic score (no training: judged on the same test folds)
  rule filter      seed 004's rules, as a 0/1 score
With ``--judge-on DATA_DIR`` (a data directory the pipeline has run on, e.g. after
``botpipeline run``), every contender is then trained on the whole label set and judged on
another set there (``--judge-set``), whose accounts have their newest feature rows.
It prints the mean ROC AUC and PR AUC over the folds with their spread, the learned model's
paired gain over each baseline (mean, a 95% interval over folds, and how many folds it wins),
the AUC of each shuffle's pooled out-of-fold probabilities (the model asset's convention),
the learned model's time per fit and the run's peak memory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import resource
import time
from pathlib import Path

import numpy as np

HANDFUL = ("followers_count", "following_count", "post_count", "listed_count", "age_days",
           "verified")


def labelled_frame(data_dir: Path, name: str):
    """A label set as the model asset trains on it (model features, ``is_bot``), with the
    heuristics' verdicts."""
    from botpipeline.defs.models.bot_classifier import training_rows
    from botpipeline.defs.models.labelled_accounts import load
    from botpipeline.defs.resources import Warehouse

    warehouse = Warehouse(data_dir=str(data_dir))
    with warehouse.get_connection() as con:
        labelled = load(warehouse, con, name)
    return training_rows(labelled).with_columns(
        labelled.frame.select("total_score", "rule_flag"))


def heuristics(frame) -> dict:
    """The untrained contenders' scores for each account of ``frame``."""
    import polars as pl

    return {name: frame[column].cast(pl.Float64).to_numpy()
            for name, column in (("13-signal total", "total_score"),
                                 ("rule filter", "rule_flag"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=Path, default=Path(os.environ.get(
        "BOTPIPELINE_REAL_DATA", "../shared/data")) / "labeled_twibot22_sample")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--trees", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--judge-on", type=Path, help="data directory holding another set")
    parser.add_argument("--judge-set", default="generated_sample")
    args = parser.parse_args()
    if not args.labels.is_dir():
        sys.exit(f"no label set at {args.labels} (set --labels or BOTPIPELINE_REAL_DATA)")

    from sklearn.base import clone
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import RepeatedStratifiedKFold

    from botpipeline.models.bot_classifier import (TrainingConfig, _classifier, _logistic,
                                                   _matrix, usable_features)

    with tempfile.TemporaryDirectory() as data_dir:
        shutil.copytree(args.labels, Path(data_dir) / "incoming" / "labels" / "benchmark")
        frame = labelled_frame(Path(data_dir), "benchmark")
    y = frame["is_bot"].to_numpy()
    features = usable_features(frame)
    print(f"{args.labels.name}: {frame.height} accounts, {int(y.sum())} bots, "
          f"{len(features)} usable features; {args.folds}-fold CV x {args.repeats} repeats")

    config = TrainingConfig(seed=args.seed, trees=args.trees, folds=args.folds)
    contenders = {
        "learned model": (_classifier(config), features),
        "logistic, same features": (_logistic(), features),
        "logistic, 6 log-scaled": (_logistic(), HANDFUL),
        "logistic, 6 raw": (_logistic().set_params(functiontransformer="passthrough"), HANDFUL),
    }
    fixed = heuristics(frame)
    matrices = {name: _matrix(frame, columns) for name, (_, columns) in contenders.items()}
    folds = list(RepeatedStratifiedKFold(n_splits=args.folds, n_repeats=args.repeats,
                                         random_state=args.seed).split(np.zeros(len(y)), y))
    scores = {name: {"roc": [], "pr": []} for name in [*contenders, *fixed]}
    # Out-of-fold probabilities per shuffle: the AUC of the pooled folds is what the model
    # asset reports (it also penalises score scales that differ between folds).
    pooled = {name: np.zeros((args.repeats, len(y))) for name in contenders}
    learned_seconds = 0.0
    for i, (train, test) in enumerate(folds, 1):
        for name, (model, _) in contenders.items():
            x = matrices[name]
            started = time.perf_counter()
            fitted = clone(model).fit(x[train], y[train])
            p = fitted.predict_proba(x[test])[:, 1]
            if name == "learned model":
                learned_seconds += time.perf_counter() - started
            pooled[name][(i - 1) // args.folds, test] = p
            scores[name]["roc"].append(roc_auc_score(y[test], p))
            scores[name]["pr"].append(average_precision_score(y[test], p))
        for name, p in fixed.items():
            scores[name]["roc"].append(roc_auc_score(y[test], p[test]))
            scores[name]["pr"].append(average_precision_score(y[test], p[test]))
        print(f"  fold {i}/{len(folds)}: learned {scores['learned model']['roc'][-1]:.3f}, "
              f"logistic same {scores['logistic, same features']['roc'][-1]:.3f}", flush=True)

    print(f"\n{'contender':26s} {'ROC AUC':>15s} {'PR AUC':>15s}")
    for name, s in scores.items():
        roc, pr = np.array(s["roc"]), np.array(s["pr"])
        print(f"{name:26s} {roc.mean():7.3f} ± {roc.std():.3f} {pr.mean():7.3f} ± {pr.std():.3f}")
    learned = np.array(scores["learned model"]["roc"])
    print(f"\nlearned model's ROC AUC gain, paired over the {len(folds)} folds "
          "(mean, 95% interval of the mean, folds won):")
    for name, s in scores.items():
        if name == "learned model":
            continue
        gain = learned - np.array(s["roc"])
        half = 1.96 * gain.std(ddof=1) / np.sqrt(len(gain))
        print(f"  vs {name:24s} {gain.mean():+.3f}  [{gain.mean() - half:+.3f}, "
              f"{gain.mean() + half:+.3f}]  {int((gain > 0).sum())}/{len(gain)}")
    print("\npooled out-of-fold ROC AUC per shuffle (as the model asset reports it):")
    for name, runs in pooled.items():
        per_shuffle = [roc_auc_score(y, p) for p in runs]
        print(f"  {name:24s} {np.mean(per_shuffle):.3f}  ("
              + ", ".join(f"{v:.3f}" for v in per_shuffle) + ")")
    won = sum(roc_auc_score(y, a) > roc_auc_score(y, b) for a, b in
              zip(pooled["learned model"], pooled["logistic, same features"]))
    print(f"  learned model above the same-feature logistic in {won}/{args.repeats} shuffles")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(f"\nlearned model: {learned_seconds / len(folds):.1f} s per fit+score; "
          f"peak memory of the whole run {peak_mib:.0f} MiB")
    if args.judge_on:
        judge(contenders, frame, y, labelled_frame(args.judge_on, args.judge_set),
              f"{args.judge_set} in {args.judge_on}")


def judge(contenders, frame, y, target, where: str) -> None:
    """Train every contender on all of ``frame``, rank the accounts of ``target``."""
    from sklearn.base import clone
    from sklearn.metrics import average_precision_score, roc_auc_score

    from botpipeline.models.bot_classifier import _matrix

    truth = target["is_bot"].to_numpy()
    print(f"\ntrained on all {frame.height}, judged on {where}: {target.height} accounts, "
          f"{int(truth.sum())} bots")
    print(f"{'contender':26s} {'ROC AUC':>8s} {'PR AUC':>8s}")
    for name, (model, columns) in contenders.items():
        p = clone(model).fit(_matrix(frame, columns), y).predict_proba(
            _matrix(target, columns))[:, 1]
        print(f"{name:26s} {roc_auc_score(truth, p):8.3f} "
              f"{average_precision_score(truth, p):8.3f}")
    for name, p in heuristics(target).items():
        print(f"{name:26s} {roc_auc_score(truth, p):8.3f} "
              f"{average_precision_score(truth, p):8.3f}")


if __name__ == "__main__":
    main()
