"""The bot model's training is reproducible across processes, its files are checked on load,
several label sets train one model, and the threshold is chosen across origins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from botpipeline.models.bot_classifier import (BotClassifier, ModelFileError, TrainingConfig,
                                               best_f1_threshold,
                                               evaluate_candidates, origin_weights, select,
                                               train, worst_origin_threshold)
from botpipeline.readers.label_sets import LabelSet, read_label_set
from botpipeline.transforms.profile_features import profile_features
from botpipeline_tests.conftest import PROJECT_ROOT, REAL_DATA

TWIBOT = REAL_DATA / "labeled_twibot22_sample"

# Reads the label files, computes the features and trains, in a process of its own; prints
# what must not change from one run to the next.
FRESH = """
import hashlib, json, sys
from pathlib import Path
import polars as pl
from botpipeline.models.bot_classifier import TrainingConfig, train, training_fingerprint
from botpipeline.readers.label_sets import LabelSet, read_label_set
from botpipeline.transforms.profile_features import profile_features
folder = Path(sys.argv[1])
data = read_label_set(LabelSet("twibot22", (folder / "label_sample.csv",
                                            folder / "user_sample.json")))
rows = (profile_features(data.profiles).join(data.labels.drop("platform"), on="account_id")
        .with_columns((pl.col("label") == "bot").alias("is_bot")))
out = {"features": hashlib.sha256(rows.drop("label", "label_source").sort("account_id")
                                  .write_ipc(None).getvalue()).hexdigest()}
for candidate in ("logistic_profile", "ensemble"):
    model = train(rows, TrainingConfig(seed=3, trees=20, folds=3, candidate=candidate),
                  label_set="twibot22")
    out[candidate] = {"fingerprint": model.fingerprint, "trained_on": model.trained_on,
                      "version": model.version, "threshold": model.threshold,
                      "scores": hashlib.sha256(model.predict(rows).tobytes()).hexdigest(),
                      "out_of_fold": hashlib.sha256(
                          model.out_of_fold["probability"].to_numpy().tobytes()).hexdigest()}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def twibot():
    if not TWIBOT.is_dir():
        pytest.skip("TwiBot-22 sample not found")
    data = read_label_set(LabelSet("twibot22", (TWIBOT / "label_sample.csv",
                                                TWIBOT / "user_sample.json")))
    return (profile_features(data.profiles)
            .join(data.labels.drop("platform"), on="account_id")
            .with_columns((pl.col("label") == "bot").alias("is_bot")))


def test_two_fresh_trainings_give_the_same_fingerprint_and_scores(twibot):
    # Different hash seeds: anything summed in hash order (polars value_counts, Python sets)
    # would show up as different bits.
    runs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", FRESH, str(TWIBOT)], env=env,
                              cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert runs[0] == runs[1]
    assert runs[0]["logistic_profile"]["fingerprint"] != runs[0]["ensemble"]["fingerprint"]


def test_model_files_are_checked_on_load(twibot, tmp_path):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    model = train(twibot, TrainingConfig(folds=3))
    folder = tmp_path / "m"
    model.save(folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        "model.json", "model.skops", "out_of_fold.parquet"]
    again = BotClassifier.load(folder)
    assert (again.predict(twibot) == model.predict(twibot)).all()
    assert again.out_of_fold.equals(model.out_of_fold)
    record = json.loads((folder / "model.json").read_text())

    def write(**changes):
        (folder / "model.json").write_text(json.dumps(record | changes))

    write(sklearn_version="0.0.1")
    with pytest.raises(ModelFileError, match="scikit-learn 0.0.1"):
        BotClassifier.load(folder)
    write()
    (folder / "out_of_fold.parquet").write_bytes(b"changed")
    with pytest.raises(ModelFileError, match="out_of_fold.parquet: missing or changed"):
        BotClassifier.load(folder)
    # A file that names code to run is refused even with a matching hash.
    evil = sio.dumps(FunctionTransformer(os.system))
    (folder / "model.skops").write_bytes(evil)
    import hashlib
    write(sha256={"model.skops": hashlib.sha256(evil).hexdigest()})
    with pytest.raises(ModelFileError, match="outside the allow list.*system"):
        BotClassifier.load(folder)
    (tmp_path / "old.pkl").write_bytes(b"\x80\x05N.")
    with pytest.raises(ModelFileError, match="pickles are no longer loaded"):
        BotClassifier.load(tmp_path / "old.pkl")


def test_several_origins_weighted_equally_and_judged_left_out(twibot):
    # Two origins of very different size from the same sample (ids keep them apart).
    ordered = twibot.sort("account_id")
    rows = ordered.with_columns(
        pl.when(pl.int_range(pl.len()) < 800).then(pl.lit("big")).otherwise(pl.lit("small"))
        .alias("origin"))
    weights = origin_weights(rows["origin"].to_numpy())
    assert weights[:800].sum() == pytest.approx(weights[800:].sum())
    assert weights.mean() == pytest.approx(1.0)
    model = train(rows, TrainingConfig(folds=3))
    assert model.label_sets == ("big", "small") and model.label_set == "big+small"
    per_origin = model.metrics["per_origin"]
    assert [per_origin[o]["accounts"] for o in ("big", "small")] == [800, 200]
    for o in ("big", "small"):
        assert per_origin[o]["leave_one_origin_out_roc_auc"] > 0.6
        assert per_origin[o]["at_threshold"]["threshold"] == round(model.threshold, 4)
    assert model.metrics["threshold_rule"] == "best worst-origin F1"
    assert set(model.out_of_fold["origin"].unique()) == {"big", "small"}
    # Row order does not matter: the rows are put in a canonical order first.
    assert train(rows.reverse(), TrainingConfig(folds=3)).fingerprint == model.fingerprint

    results = evaluate_candidates({"big": rows.filter(pl.col("origin") == "big"),
                                   "small": rows.filter(pl.col("origin") == "small")},
                                  ["logistic", "logistic_robust"], TrainingConfig(folds=3))
    for r in results.values():
        assert set(r["in_domain"]) == set(r["transfer"]) == {"big", "small"}
        assert r["worst_transfer"] == min(r["transfer"].values())
    assert select(results) in results


def test_selection_prefers_worst_case_transfer_within_in_domain_slack():
    results = {
        "in_domain_star": {"in_domain": {"a": 0.80, "b": 0.95}, "transfer": {"a": 0.6, "b": 0.7},
                           "in_domain_mean": 0.875, "worst_transfer": 0.6},
        "transfers": {"in_domain": {"a": 0.79, "b": 0.94}, "transfer": {"a": 0.7, "b": 0.72},
                      "in_domain_mean": 0.865, "worst_transfer": 0.7},
        "weak_at_home": {"in_domain": {"a": 0.70, "b": 0.94}, "transfer": {"a": 0.8, "b": 0.8},
                         "in_domain_mean": 0.82, "worst_transfer": 0.8},
    }
    assert select(results) == "transfers"
    assert select({n: r | {"worst_transfer": None} for n, r in results.items()}) \
        == TrainingConfig.candidate


def test_threshold_holds_on_the_worst_origin():
    # Origin a's bots score 0.6 and 0.7; origin b's 0.3 and 0.35. The best F1 on a alone
    # (0.6) misses every bot of b; 0.35 keeps a perfect and catches one of b's two bots
    # without a false alarm (worst F1 0.67; 0.3 would flag five of a's humans).
    a = (np.array([0] * 8 + [1] * 2), np.array([.1, .2, .2, .3, .3, .4, .4, .5, .6, .7]))
    b = (np.array([0] * 8 + [1] * 2), np.array([.0, .0, .05, .1, .1, .1, .15, .2, .3, .35]))
    assert best_f1_threshold(*a) == 0.6
    assert worst_origin_threshold({"a": a, "b": b}) == 0.35
    with pytest.raises(ValueError, match="unknown model"):
        train(pl.DataFrame(), TrainingConfig(candidate="nope"))
