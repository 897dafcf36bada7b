"""Benchmark: which bot model transfers to label sets it never saw, beside the baselines.

    python benchmarks/bot_model_quality.py --data data        # after botpipeline run
        [--labels ../shared/data/labeled_twibot22_sample] [--folds 5] [--repeats 3]
        [--trees 200] [--candidates ensemble logistic ...]

Origins: every label set of ``--data`` (a data directory the pipeline has run on, so its
sets' accounts have their newest feature rows, e.g. ``generated_sample``), plus each
``--labels`` folder (default: the 1,000 TwiBot-22 profiles, 146 bots), read through the
project's own path (label set, feature frame SQL, model features; the 13-signal total and the
rule filter by the daily SQL with default settings). Each origin needs enough bots and humans
to cross-validate.

For every contender of botpipeline/models/bot_classifier.py (models.bot_classifier.CANDIDATES)
it prints, through the same code the model asset runs (``evaluate_candidates``):
  in-domain        ROC AUC of ``--folds``-fold CV within each origin, mean of ``--repeats``
  left out         ROC AUC on each origin of the contender trained on all the others
                   (with two origins: A -> B and B -> A)
  worst            the worst left-out AUC, which picks the default (``select``: the best
                   worst case among contenders within 0.02 of the best in-domain AUC)
beside the untrained heuristics on each origin, and whether the default is at least the
same-feature logistic regression in every direction. Then the chosen contender is trained
as the asset trains it (on each origin alone, and on all of them as one union), with the
threshold chosen for the best worst-origin F1, and its precision and recall on each origin at
that threshold; and the time per fit and the run's peak memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


def labelled_frame(data_dir: Path, name: str):
    """A label set as the model asset trains on it (model features, ``is_bot``, ``origin``),
    with the heuristics' verdicts."""
    from botpipeline.defs.models.bot_classifier import training_rows
    from botpipeline.defs.models.labelled_accounts import load
    from botpipeline.defs.resources import Warehouse

    warehouse = Warehouse(data_dir=str(data_dir))
    with warehouse.get_connection() as con:
        warehouse.lake.register_views(con)
        labelled = load(warehouse, con, name)
    return training_rows(labelled).with_columns(
        labelled.frame.select("total_score", "rule_flag"))


def heuristics(frame) -> dict:
    """The untrained contenders' scores for each account of ``frame``."""
    import polars as pl

    return {name: frame[column].cast(pl.Float64).to_numpy()
            for name, column in (("13-signal total", "total_score"),
                                 ("rule filter", "rule_flag"))}


def load_origins(data: Path | None, extra: list[Path]) -> dict:
    from botpipeline.defs.models.bot_classifier import judgeable
    from botpipeline.defs.models.labelled_accounts import available
    from botpipeline.defs.resources import Warehouse

    origins = {}
    if data is not None:
        for name in available(Warehouse(data_dir=str(data))):
            origins[name] = labelled_frame(data, name)
    for folder in extra:
        if folder.name in origins:
            sys.exit(f"two label sets named {folder.name}")
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(folder, Path(tmp) / "incoming" / "labels" / folder.name)
            origins[folder.name] = labelled_frame(Path(tmp), folder.name)
    kept = {}
    for name, frame in sorted(origins.items()):
        if judgeable(frame, 5):
            kept[name] = frame
        else:
            print(f"skipped {name}: {frame.height} accounts, {int(frame['is_bot'].sum())} bots")
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="a data directory the pipeline ran on")
    parser.add_argument("--labels", type=Path, action="append", help="a label-set folder")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidates", nargs="*")
    args = parser.parse_args()
    labels = args.labels or [Path(os.environ.get("BOTPIPELINE_REAL_DATA", "../shared/data"))
                             / "labeled_twibot22_sample"]
    for folder in labels:
        if not folder.is_dir():
            sys.exit(f"no label set at {folder} (set --labels or BOTPIPELINE_REAL_DATA)")

    from botpipeline.models.bot_classifier import (BASELINE, CANDIDATES, TrainingConfig,
                                                   evaluate_candidates, ranking_metrics,
                                                   select, train, usable_features)

    origins = load_origins(args.data, labels)
    if len(origins) < 2:
        sys.exit(f"transfer needs two origins; found {sorted(origins)} (pass --data after "
                 f"botpipeline run, or more --labels)")
    for name, frame in origins.items():
        print(f"origin {name}: {frame.height} accounts, {int(frame['is_bot'].sum())} bots, "
              f"{len(usable_features(frame))} usable features")
    config = TrainingConfig(seed=args.seed, trees=args.trees, folds=args.folds,
                            repeats=args.repeats)
    timings = {}

    def log(line: str) -> None:
        print("  " + line[:160], flush=True)

    results = {}
    for name in args.candidates or list(CANDIDATES):
        started = time.perf_counter()
        results |= evaluate_candidates(origins, [name], config, log=log)
        timings[name] = time.perf_counter() - started
    chosen = select(results)
    names = list(origins)
    print(f"\nROC AUC; in-domain: {args.folds}-fold CV within the origin x {args.repeats}; "
          f"left out: trained on the other origin(s), judged on this one")
    header = ([f"in {o}" for o in names] + [f"-> {o}" for o in names] + ["worst", "s"])
    w = max(8, *(len(h) for h in header))
    print(f"{'contender':30s} " + " ".join(f"{h:>{w}s}" for h in header))
    best_in = max(results, key=lambda n: results[n]["in_domain_mean"])
    for name, r in results.items():
        mark = " *" if name == chosen else (" i" if name == best_in else "")
        cells = ([r["in_domain"][o] for o in names] + [r["transfer"][o] for o in names]
                 + [r["worst_transfer"]])
        print(f"{name + mark:30s} " + " ".join(f"{c:{w}.3f}" for c in cells)
              + f" {timings[name]:{w}.0f}")
    for name in ("13-signal total", "rule filter"):
        cells = [ranking_metrics(f["is_bot"].to_numpy(), heuristics(f)[name])["roc_auc"]
                 for f in origins.values()]
        print(f"{name + ' (no training)':30s} " + " ".join(f"{c:{w}.3f}" for c in cells * 2)
              + f" {min(cells):{w}.3f}")
    print(f"* the default (best worst-case transfer within 0.02 of the best in-domain AUC "
          f"on every origin); i the best in-domain mean")
    base = results[BASELINE]
    for o in names:
        gain = results[chosen]["transfer"][o] - base["transfer"][o]
        print(f"  {chosen} vs same-feature {BASELINE}, judged on {o} (left out): "
              f"{results[chosen]['transfer'][o]:.3f} vs {base['transfer'][o]:.3f} "
              f"({gain:+.3f}){'' if gain >= 0 else '  BELOW THE BASELINE'}")

    print(f"\n{chosen} as the model asset trains it; the threshold: best worst-origin F1 over "
          f"held-out scores (out-of-fold on the training origins, plain scores elsewhere)")
    import polars as pl
    trainings = [[o] for o in names] + [names]
    for trained_on in trainings:
        rows = pl.concat([origins[o] for o in trained_on], how="diagonal_relaxed")
        started = time.perf_counter()
        model = train(rows, TrainingConfig(seed=args.seed, trees=args.trees, folds=args.folds,
                                           candidate=chosen),
                      judge_on={o: f for o, f in origins.items() if o not in trained_on})
        print(f"trained on {' + '.join(trained_on)}: threshold {model.threshold:.4g}, "
              f"{time.perf_counter() - started:.1f} s (cross-validation and fit)")
        print(f"  {'origin':24s} {'held out':15s} {'accounts':>8s} {'bots':>5s} "
              f"{'ROC AUC':>8s} {'left-out':>8s} {'precision':>9s} {'recall':>7s} "
              f"{'F1':>6s}")
        for o, m in model.metrics["per_origin"].items():
            t = m["at_threshold"]
            left = m.get("leave_one_origin_out_roc_auc")
            print(f"  {o:24s} {m['held_out']:15s} {m['accounts']:8d} {m['positives']:5d} "
                  f"{m['roc_auc']:8.3f} {left if left is not None else '':>8} "
                  f"{t['precision']:9.3f} {t['recall']:7.3f} {t['f1']:6.3f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(f"\npeak memory of the whole run {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
