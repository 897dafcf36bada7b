"""A learned bot classifier on the model features (transforms/profile_features.py), chosen by
how well it transfers to label sets it never saw.

**Contenders** (``CANDIDATES``): the calibrated extra-trees + boosting vote, logistic
regressions (plain, strongly L2-regularized, L1, on profile features only, on a few robust
log-scaled counts and rates, on rank-transformed features) and additive monotone boosting
(depth-1 trees whose direction per feature is fixed by the training data's rank correlation).
Every contender sees the same features, signed-log scaled; a field a source lacks stays
missing (trees take it natively, the linear models impute the training median).

**Origins.** Each training row names its ``origin`` (the label set it comes from). Training on
several origins weights each origin's rows so every origin carries the same total weight: one
large set does not drown the rest. ``evaluate_candidates`` judges every contender in-domain
(cross-validation within each origin) and by leave-one-origin-out (train on all origins but
one, judge on the one left out); ``select`` takes the best worst-case transfer AUC, not the
best in-domain fold (Yang et al., "Scalable and generalizable social bot detection through
data selection", AAAI 2020: what generalizes is found by judging across datasets).

**Threshold.** The flag threshold maximizes the *worst* origin's F1 over held-out scores (the
out-of-fold scores of each training origin, the model's scores on every other origin it is
judged on), so it keeps its precision away from the set it was fitted on; precision and recall
at it are reported per origin.

**Reproducible.** Folds and estimators are seeded, features are computed in a fixed order
(profile_features sorts before summing), the rows are put in a canonical order before fitting
and BLAS runs on one thread while fitting, so the same rows, seed and settings give the same
fingerprint, model bytes and scores. The fitted estimator is stored with ``skops`` (no pickle:
loading runs no code from the file), beside a JSON record of the scikit-learn version and a
sha256 of each file, checked on load.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import polars as pl
import sklearn
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.ensemble import (ExtraTreesClassifier, HistGradientBoostingClassifier,
                              VotingClassifier)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import QuantileTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from botpipeline.transforms.label_evaluation import detector_report
from botpipeline.transforms.profile_features import COUNTS, FEATURES, MODEL_FEATURES

from botpipeline.lazy import lazy

np = lazy("numpy")

ORIGIN = "origin"
# Few, robust features: lifetime counts, their rates per day, follower ratios, age, verified.
ROBUST = ("age_days", *COUNTS, *(f"{c}_per_day" for c in COUNTS), "followers_per_following",
          "following_per_followers", "listed_per_followers", "verified")
FORMAT = 2  # the model file layout (model.skops + model.json + out_of_fold.parquet)


class ModelFileError(RuntimeError):
    """A stored model that cannot be trusted or used here: wrong format, another
    scikit-learn version, or a file that is not what was written at training."""


@dataclass(frozen=True)
class TrainingConfig:
    seed: int = 0
    trees: int = 400             # extra-trees members / boosting rounds scale with it
    folds: int = 5               # cross-validation and calibration folds
    repeats: int = 1             # cross-validation shuffles (seed, seed + 1, ...) to average
    threshold: float | None = None  # None: the best worst-origin F1 over held-out scores
    # A name in CANDIDATES. The default won the worst-case transfer of
    # benchmarks/bot_model_quality.py (TwiBot-22 sample <-> generated sample).
    candidate: str = "logistic_profile"


# --------------------------------------------------------------------------- contenders

@dataclass(frozen=True)
class Candidate:
    name: str
    description: str
    features: str                # "all" (every usable feature), "profile", "robust"
    build: Callable[[TrainingConfig, np.ndarray, np.ndarray], object]
    weight_param: str            # fit() keyword that takes the sample weights


def _logistic_pipeline(c: float = 1.0, l1: bool = False, rank: bool = False,
                       seed: int = 0):
    steps = [SimpleImputer(strategy="median")]
    steps.append(QuantileTransformer(n_quantiles=200, output_distribution="normal",
                                     random_state=seed) if rank else StandardScaler())
    steps.append(LogisticRegression(C=c, l1_ratio=1.0, solver="saga", max_iter=5000,
                                    random_state=seed) if l1
                 else LogisticRegression(C=c, max_iter=3000))
    return make_pipeline(*steps)


class WeightedVote(VotingClassifier):
    """VotingClassifier whose ``fit`` names ``sample_weight``, so CalibratedClassifierCV
    passes the origin weights on to the trees (it only does for estimators whose signature
    shows the parameter; VotingClassifier's takes ``**fit_params``)."""

    def fit(self, X, y, sample_weight=None):
        return super().fit(X, y, sample_weight=sample_weight)


def _ensemble(config: TrainingConfig, x: np.ndarray, y: np.ndarray):
    # n_jobs=1: parallel prediction sums the trees in thread order, which changes the last
    # bits of the probabilities, the calibration fitted on them, and so the fingerprint.
    trees = ExtraTreesClassifier(config.trees, min_samples_leaf=10, max_features=0.5,
                                 random_state=config.seed, n_jobs=1)
    boost = HistGradientBoostingClassifier(max_iter=max(config.trees * 3 // 4, 10),
                                           learning_rate=0.01, max_depth=2,
                                           min_samples_leaf=40, l2_regularization=10,
                                           random_state=config.seed)
    vote = WeightedVote([("extra_trees", trees), ("boosting", boost)], voting="soft")
    return CalibratedClassifierCV(vote, method="sigmoid", cv=_folds(config))


def monotone_directions(x: np.ndarray, y: np.ndarray, floor: float = 0.05) -> list[int]:
    """+1 / -1 per column where the rank correlation with the label exceeds ``floor`` in size,
    else 0 (unconstrained); missing values are left out of each column's correlation."""
    directions = []
    for column in x.T:  # one pass per feature, vectorized over rows
        seen = ~np.isnan(column)
        if seen.sum() < 10 or np.unique(column[seen]).size < 2:
            directions.append(0)
            continue
        ranks = pl.Series(column[seen]).rank("average").to_numpy()
        rho = np.corrcoef(ranks, y[seen].astype(float))[0, 1]
        directions.append(0 if not np.isfinite(rho) or abs(rho) < floor
                          else int(np.sign(rho)))
    return directions


def _additive_monotone(config: TrainingConfig, x: np.ndarray, y: np.ndarray):
    return HistGradientBoostingClassifier(
        max_iter=max(config.trees, 10), learning_rate=0.05, max_depth=None, max_leaf_nodes=2,
        min_samples_leaf=20, l2_regularization=1.0, random_state=config.seed,
        monotonic_cst=monotone_directions(x, y))


CANDIDATES: dict[str, Candidate] = {c.name: c for c in (
    Candidate("ensemble", "calibrated extra-trees + boosting vote (the first model)",
              "all", _ensemble, "sample_weight"),
    Candidate("logistic", "logistic regression, every feature, log-scaled", "all",
              lambda cfg, x, y: _logistic_pipeline(), "logisticregression__sample_weight"),
    Candidate("logistic_strong_l2", "logistic regression, C = 0.05", "all",
              lambda cfg, x, y: _logistic_pipeline(0.05), "logisticregression__sample_weight"),
    Candidate("logistic_l1", "logistic regression, L1, C = 0.1", "all",
              lambda cfg, x, y: _logistic_pipeline(0.1, l1=True, seed=cfg.seed),
              "logisticregression__sample_weight"),
    Candidate("logistic_rank", "logistic regression on rank (quantile-normal) features", "all",
              lambda cfg, x, y: _logistic_pipeline(0.1, rank=True, seed=cfg.seed),
              "logisticregression__sample_weight"),
    Candidate("logistic_profile", "logistic regression, profile features only", "profile",
              lambda cfg, x, y: _logistic_pipeline(), "logisticregression__sample_weight"),
    Candidate("logistic_robust", "logistic regression, C = 0.1, log counts, rates, ratios",
              "robust", lambda cfg, x, y: _logistic_pipeline(0.1),
              "logisticregression__sample_weight"),
    Candidate("additive_monotone", "boosted stumps (additive), monotone in each feature",
              "all", _additive_monotone, "sample_weight"),
)}
BASELINE = "logistic"  # the same-feature logistic regression every model is compared with


def candidate(name: str) -> Candidate:
    if name not in CANDIDATES:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(CANDIDATES)}")
    return CANDIDATES[name]


# --------------------------------------------------------------------------- features

def usable_features(frame: pl.DataFrame, kind: str = "all") -> tuple[str, ...]:
    """The features the training rows actually carry: a field the source never has (v2
    users have no favourites, profiles alone have no activity) cannot be learned from, so
    it is left out, and recorded. ``kind`` narrows to profile or robust features."""
    pool = {"all": MODEL_FEATURES, "profile": FEATURES, "robust": ROBUST}[kind]
    return tuple(c for c in pool
                 if c in frame.columns and frame[c].null_count() < frame.height)


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _matrix(frame: pl.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    """The model input: the features in order, Float64, signed-log scaled (heavy-tailed
    counts up to 1e8 would otherwise dominate scales and split points); missing stays NaN."""
    return _signed_log(frame.select(
        (pl.col(c) if c in frame.columns else pl.lit(None)).cast(pl.Float64).alias(c)
        for c in features).to_numpy())


def training_fingerprint(frame: pl.DataFrame, label: str = "is_bot") -> str:
    """sha256 of the training rows (origin, features and label, in a canonical order)."""
    present = [c for c in MODEL_FEATURES if c in frame.columns]
    origin = [ORIGIN] if ORIGIN in frame.columns else []
    rows = frame.select(*origin, "platform", "account_id", *present, label).sort(
        *origin, "platform", "account_id")
    buffer = io.BytesIO()
    rows.write_ipc(buffer, compression="uncompressed")
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _canonical(frame: pl.DataFrame, label_set: str) -> pl.DataFrame:
    """Rows in one order (origin, platform, account_id) whatever order they came in."""
    if ORIGIN not in frame.columns:
        frame = frame.with_columns(pl.lit(label_set or "training").alias(ORIGIN))
    return frame.sort(ORIGIN, "platform", "account_id")


def origin_weights(origins: np.ndarray) -> np.ndarray:
    """Each origin carries the same total weight; weights average 1."""
    names, index, counts = np.unique(origins, return_inverse=True, return_counts=True)
    return (len(origins) / (len(names) * counts))[index]


# --------------------------------------------------------------------------- fitting

def _folds(config: TrainingConfig, repeat: int = 0) -> StratifiedKFold:
    return StratifiedKFold(config.folds, shuffle=True, random_state=config.seed + repeat)


def fit(spec: Candidate, config: TrainingConfig, x: np.ndarray, y: np.ndarray,
        weights: np.ndarray | None = None):
    """A fitted estimator of the contender; BLAS on one thread so sums keep their order."""
    model = spec.build(config, x, y)
    with threadpool_limits(1, user_api="blas"):
        return model.fit(x, y, **({spec.weight_param: weights} if weights is not None else {}))


def _out_of_fold(spec: Candidate, config: TrainingConfig, x, y, weights, strata,
                 repeat: int = 0) -> np.ndarray:
    """Out-of-fold probabilities; folds stratified by origin and label; each fold's
    estimator (monotone directions included) is built from its own training rows only."""
    p = np.zeros(len(y))
    for train_rows, test_rows in _folds(config, repeat).split(x, strata):
        model = fit(spec, config, x[train_rows], y[train_rows],
                    None if weights is None else weights[train_rows])
        p[test_rows] = model.predict_proba(x[test_rows])[:, 1]
    return p


def at_threshold(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """Precision, recall, F1 and the confusion table of the flag ``p >= threshold``."""
    frame = pl.DataFrame({"positive": y.astype(bool), "flag": p >= threshold})
    return {"threshold": round(float(threshold), 4)} | detector_report(frame, "flag")


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    precision, recall, thresholds = precision_recall_curve(y, p)
    f1 = np.where(precision + recall > 0, 2 * precision * recall
                  / np.maximum(precision + recall, 1e-12), 0)[:-1]
    return float(thresholds[int(np.argmax(f1))]) if len(thresholds) else 0.5


def worst_origin_threshold(held_out: dict[str, tuple[np.ndarray, np.ndarray]]) -> float:
    """The threshold whose worst F1 over the origins is highest (ties: the best mean F1).
    ``held_out``: origin -> (labels, held-out probabilities)."""
    usable = {o: (y.astype(bool), p) for o, (y, p) in held_out.items() if y.any()}
    if not usable:
        return 0.5
    candidates = np.unique(np.concatenate([p for _, p in usable.values()]))
    f1 = []
    for y, p in usable.values():  # per origin, vectorized over every threshold
        ordered, positives = np.sort(p), np.sort(p[y])
        flagged = len(p) - np.searchsorted(ordered, candidates, side="left")
        caught = len(positives) - np.searchsorted(positives, candidates, side="left")
        f1.append(2 * caught / (flagged + y.sum()))
    f1 = np.array(f1)
    worst, mean = f1.min(axis=0), f1.mean(axis=0)
    best = np.flatnonzero(worst == worst.max())
    return float(candidates[best[np.argmax(mean[best])]])


def ranking_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    if y.all() or not y.any():
        return {"roc_auc": None, "pr_auc": None}
    return {"roc_auc": round(float(roc_auc_score(y, p)), 4),
            "pr_auc": round(float(average_precision_score(y, p)), 4)}


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict:
    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    return {"predicted": [round(float(v), 4) for v in predicted],
            "observed": [round(float(v), 4) for v in observed],
            "brier": round(float(np.mean((p - y) ** 2)), 4)}


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 4) if values else None


# --------------------------------------------------------------------------- selection

def evaluate_candidates(origins: dict[str, pl.DataFrame], names: list[str] | None = None,
                        config: TrainingConfig = TrainingConfig(), label: str = "is_bot",
                        log=None) -> dict[str, dict]:
    """Every contender judged in-domain (``config.folds``-fold CV within each origin,
    averaged over ``config.repeats`` shuffles) and by leave-one-origin-out (trained on the
    other origins, weighted per origin; judged on the one left out).

    Returns name -> {"in_domain": {origin: AUC}, "transfer": {origin: AUC},
    "in_domain_mean", "worst_transfer", "mean_transfer"}. Origins need both classes."""
    origins = {o: _canonical(f, o).with_columns(pl.lit(o).alias(ORIGIN))
               for o, f in sorted(origins.items())}
    for o, f in origins.items():
        y = f[label].cast(pl.Boolean)
        if y.sum() < config.folds or (~y).sum() < config.folds:
            raise ValueError(f"origin {o!r} needs at least {config.folds} bots and "
                             f"{config.folds} humans to be judged")
    union = pl.concat(list(origins.values()), how="diagonal_relaxed")
    results = {}
    for name in names or list(CANDIDATES):
        spec = candidate(name)
        features = usable_features(union, spec.features)
        in_domain, transfer = {}, {}
        for o, frame in origins.items():
            own = usable_features(frame, spec.features)
            x, y = _matrix(frame, own), frame[label].cast(pl.Boolean).to_numpy()
            in_domain[o] = _mean(ranking_metrics(y, _out_of_fold(spec, config, x, y, None, y,
                                                                 r))["roc_auc"]
                                 for r in range(config.repeats))
            if len(origins) > 1:
                rest = union.filter(pl.col(ORIGIN) != o)
                kept = tuple(f for f in features if f in usable_features(rest, spec.features))
                model = fit(spec, config, _matrix(rest, kept),
                            rest[label].cast(pl.Boolean).to_numpy(),
                            origin_weights(rest[ORIGIN].to_numpy()))
                transfer[o] = ranking_metrics(
                    y, model.predict_proba(_matrix(frame, kept))[:, 1])["roc_auc"]
        results[name] = {
            "description": spec.description, "in_domain": in_domain, "transfer": transfer,
            "in_domain_mean": _mean(in_domain.values()),
            "worst_transfer": min(transfer.values()) if transfer else None,
            "mean_transfer": _mean(transfer.values())}
        if log:
            log(f"{name}: in-domain {in_domain}, leave-one-origin-out {transfer}")
    return results


IN_DOMAIN_SLACK = 0.02


def select(results: dict[str, dict], slack: float = IN_DOMAIN_SLACK) -> str:
    """The contender with the best worst-case transfer (ties: best in-domain mean) among those
    whose in-domain AUC on every origin is within ``slack`` of the best contender's there
    (transfer is the goal, but not at the price of what the model does where it was trained);
    with no transfer measured (one origin), the default contender."""
    judged = {n: r for n, r in results.items() if r["worst_transfer"] is not None}
    if not judged:
        return TrainingConfig.candidate
    origins = {o for r in judged.values() for o in r["in_domain"]}
    best = {o: max(r["in_domain"][o] or 0 for r in judged.values()) for o in origins}
    eligible = {n: r for n, r in judged.items()
                if all((r["in_domain"][o] or 0) >= best[o] - slack for o in origins)} or judged
    return max(eligible, key=lambda n: (eligible[n]["worst_transfer"],
                                        eligible[n]["in_domain_mean"] or 0))


# --------------------------------------------------------------------------- the model

@dataclass
class BotClassifier:
    model: object                        # a fitted scikit-learn estimator
    config: TrainingConfig
    trained_on: str                      # training-set fingerprint
    features: tuple[str, ...]
    threshold: float
    label_set: str = ""                  # the training origins, joined with "+"
    metrics: dict = field(default_factory=dict)
    out_of_fold: pl.DataFrame | None = None  # origin, platform, account_id, is_bot, probability
    sklearn_version: str = sklearn.__version__
    # sha256 of the fitted estimator's pickle, taken once when fitted (the identity of the
    # model; the file on disk is skops, with its own integrity hash).
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = hashlib.sha256(pickle.dumps(self.model, protocol=5)).hexdigest()

    @property
    def label_sets(self) -> tuple[str, ...]:
        return tuple(self.label_set.split("+")) if self.label_set else ()

    @property
    def candidate(self) -> str:
        return self.config.candidate

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Bot probability for each row of a model-features frame (missing columns: null)."""
        if frame.height == 0:
            return np.zeros(0)
        return self.model.predict_proba(_matrix(frame, self.features))[:, 1]

    @property
    def version(self) -> str:
        return self.fingerprint[:12]

    def feature_importance(self) -> dict[str, float]:
        """Share of the model's reliance on each feature: mean decrease in impurity of the
        extra-trees members (ensemble), the absolute standardized coefficients (logistic
        regressions), or the spread of each feature's additive contribution (boosted
        stumps); shares sum to 1."""
        est = self.model
        if isinstance(est, CalibratedClassifierCV):
            raw = np.mean([c.estimator.named_estimators_["extra_trees"].feature_importances_
                           for c in est.calibrated_classifiers_], axis=0)
        elif hasattr(est, "named_steps"):
            raw = np.abs(est.named_steps["logisticregression"].coef_[0])
        else:
            raw = _stump_spread(est, len(self.features))
        total = raw.sum()
        shares = raw / total if total > 0 else np.full(len(raw), 1 / len(raw))
        return dict(sorted(((f, round(float(v), 4)) for f, v in zip(self.features, shares)),
                           key=lambda kv: -kv[1]))

    # ---- files: <folder>/model.skops, model.json, out_of_fold.parquet

    def save(self, folder: Path) -> None:
        import skops.io as sio

        folder.mkdir(parents=True, exist_ok=True)
        blobs = {"model.skops": sio.dumps(self.model)}
        if self.out_of_fold is not None:
            buffer = io.BytesIO()
            self.out_of_fold.write_parquet(buffer)
            blobs["out_of_fold.parquet"] = buffer.getvalue()
        record = {"format": FORMAT, "sklearn_version": self.sklearn_version,
                  "skops_version": _skops_version(), "fingerprint": self.fingerprint,
                  "trained_on": self.trained_on, "features": list(self.features),
                  "threshold": self.threshold, "label_set": self.label_set,
                  "config": asdict(self.config), "metrics": self.metrics,
                  "sha256": {n: hashlib.sha256(b).hexdigest() for n, b in blobs.items()}}
        blobs["model.json"] = json.dumps(record, indent=1, sort_keys=True).encode()
        for name, data in blobs.items():  # model.json last: it vouches for the others
            tmp = folder / f".{name}.tmp"
            tmp.write_bytes(data)
            tmp.rename(folder / name)  # replaces (POSIX rename; a copy on object stores)

    @staticmethod
    def load(folder: Path) -> "BotClassifier":
        """A model the project wrote: the format, the scikit-learn version and the sha256 of
        each file are checked, and the estimator is rebuilt by skops from types on an allow
        list (no pickle, so no code from the file runs). Anything else raises
        ModelFileError saying what to do."""
        import skops.io as sio

        folder = Path(folder) if isinstance(folder, str) else folder  # a Path or a UPath
        if folder.suffix == ".pkl" or not (folder / "model.json").exists():
            raise ModelFileError(f"{folder}: not a model folder with model.json (models saved "
                                 f"as pickles are no longer loaded, since loading a pickle runs "
                                 f"code from it); train the model again")
        record = json.loads((folder / "model.json").read_text())
        if record.get("format") != FORMAT:
            raise ModelFileError(f"{folder}: model file format {record.get('format')}, this "
                                 f"code reads format {FORMAT}; train the model again")
        if record["sklearn_version"] != sklearn.__version__:
            raise ModelFileError(
                f"{folder}: trained with scikit-learn {record['sklearn_version']}, this "
                f"environment has {sklearn.__version__}; install that version or train the "
                f"model again (estimators are not guaranteed across versions)")
        blobs = {}
        for name, digest in record["sha256"].items():
            path = folder / name
            data = path.read_bytes() if path.exists() else b""
            if hashlib.sha256(data).hexdigest() != digest:
                raise ModelFileError(f"{path}: missing or changed since training (sha256 "
                                     f"does not match model.json); train the model again")
            blobs[name] = data
        untrusted = set(sio.get_untrusted_types(data=blobs["model.skops"]))
        if not untrusted <= TRUSTED_TYPES:
            raise ModelFileError(f"{folder}: model.skops holds types outside the allow list: "
                                 f"{sorted(untrusted - TRUSTED_TYPES)}")
        model = sio.loads(blobs["model.skops"], trusted=sorted(untrusted))
        oof = (pl.read_parquet(io.BytesIO(blobs["out_of_fold.parquet"]))
               if "out_of_fold.parquet" in blobs else None)
        return BotClassifier(model, TrainingConfig(**record["config"]), record["trained_on"],
                             tuple(record["features"]), float(record["threshold"]),
                             record["label_set"], record["metrics"], oof,
                             record["sklearn_version"], record["fingerprint"])


# Types skops does not trust by default that the contenders above are made of.
TRUSTED_TYPES = frozenset({
    "botpipeline.models.bot_classifier.WeightedVote",
    "numpy.dtype", "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.model_selection._split.StratifiedKFold", "sklearn.tree._tree.Tree",
    "sklearn.utils._bunch.Bunch",
})


def _skops_version() -> str:
    from importlib.metadata import version
    return version("skops")


def _stump_spread(est: HistGradientBoostingClassifier, n_features: int) -> np.ndarray:
    """For boosted stumps: the summed absolute leaf values of the splits on each feature."""
    spread = np.zeros(n_features)
    for (predictor,) in est._predictors:
        nodes = predictor.nodes
        split = nodes[nodes["is_leaf"] == 0]
        np.add.at(spread, split["feature_idx"],
                  np.abs(nodes["value"][split["left"]] - nodes["value"][split["right"]]))
    return spread


# --------------------------------------------------------------------------- training

def cross_validated(frame: pl.DataFrame, config: TrainingConfig = TrainingConfig(),
                    label: str = "is_bot", features: tuple[str, ...] | None = None) -> dict:
    """ROC / PR AUC of the model and the same-feature logistic baseline on the same folds
    (stratified by origin and label, origins weighted equally), averaged over
    ``config.repeats`` shuffles, the model's gain per shuffle, and the first shuffle's
    out-of-fold probabilities (what the threshold, calibration and evaluation use)."""
    frame = _canonical(frame, "")
    spec = candidate(config.candidate)
    features = features or usable_features(frame, spec.features)
    y = frame[label].cast(pl.Boolean).to_numpy()
    origins = frame[ORIGIN].to_numpy()
    weights = origin_weights(origins) if np.unique(origins).size > 1 else None
    strata = np.char.add(origins.astype(str), y.astype(str))
    inputs = {"model": (spec, _matrix(frame, features)),
              "logistic": (CANDIDATES[BASELINE],
                           _matrix(frame, usable_features(frame, CANDIDATES[BASELINE].features)))}
    runs = {"model": [], "logistic": []}
    for repeat in range(config.repeats):
        for name, (s, x) in inputs.items():
            p = _out_of_fold(s, config, x, y, weights, strata, repeat)
            runs[name].append(ranking_metrics(y, p) | {"probability": p})
    result = {}
    for name, per_repeat in runs.items():
        result[name] = {metric: _mean(r[metric] for r in per_repeat)
                        for metric in ("roc_auc", "pr_auc")}
        result[name]["probability"] = per_repeat[0]["probability"]
        if config.repeats > 1:
            result[name]["roc_auc_by_repeat"] = [r["roc_auc"] for r in per_repeat]
    gains = [m["roc_auc"] - b["roc_auc"] for m, b in zip(runs["model"], runs["logistic"])
             if m["roc_auc"] is not None and b["roc_auc"] is not None]
    result["gain_over_logistic"] = {
        "roc_auc_mean": _mean(gains), "min": round(min(gains), 4) if gains else None,
        "max": round(max(gains), 4) if gains else None,
        "repeats_won": sum(g > 0 for g in gains), "repeats": config.repeats}
    return result


def train(frame: pl.DataFrame, config: TrainingConfig = TrainingConfig(),
          label: str = "is_bot", label_set: str = "", log=None,
          judge_on: dict[str, pl.DataFrame] | None = None) -> BotClassifier:
    """Cross-validate, then fit on every row; metrics are held-out ones.

    ``frame``: model features, ``label`` and optionally ``origin`` (the label set of each row;
    default ``label_set``). Several origins are weighted equally. ``judge_on``: other origins
    (origin -> model features + label) the fitted model is judged on; their scores join the
    training origins' out-of-fold scores in choosing the threshold (best worst-origin F1)."""
    if config.folds < 2 or config.repeats < 1:
        raise ValueError(f"folds must be at least 2 and repeats at least 1; got "
                         f"{config.folds} and {config.repeats}")
    spec = candidate(config.candidate)
    frame = _canonical(frame, label_set)
    y = frame[label].cast(pl.Boolean).to_numpy()
    origins = frame[ORIGIN].to_numpy()
    names = sorted(set(origins.tolist()))
    for o in names:
        yo = y[origins == o]
        if yo.sum() < config.folds or (~yo).sum() < config.folds:
            raise ValueError(f"training needs at least {config.folds} positive and "
                             f"{config.folds} negative accounts in each label set; {o!r} has "
                             f"{int(yo.sum())} and {int((~yo).sum())}")
    features = usable_features(frame, spec.features)
    if log:
        log(f"{spec.name}: cross-validating on {frame.height} accounts ({int(y.sum())} bots) "
            f"from {names}, {len(features)} features")
    cv = cross_validated(frame, config, label, features)
    oof = cv["model"].pop("probability")
    cv["logistic"].pop("probability")
    weights = origin_weights(origins) if len(names) > 1 else None
    model = fit(spec, config, _matrix(frame, features), y, weights)

    held_out = {o: (y[origins == o], oof[origins == o]) for o in names}
    per_origin = {o: {"accounts": int((origins == o).sum()), "positives": int(yo.sum()),
                      "held_out": "out-of-fold", **ranking_metrics(yo, po)}
                  for o, (yo, po) in held_out.items()}
    if len(names) > 1:  # each training origin judged by a model that never saw it
        for o in names:
            rest = origins != o
            kept = tuple(f for f in features
                         if f in usable_features(frame.filter(pl.Series(rest)), spec.features))
            left_out = fit(spec, config, _matrix(frame.filter(pl.Series(rest)), kept), y[rest],
                           origin_weights(origins[rest]))
            per_origin[o]["leave_one_origin_out_roc_auc"] = ranking_metrics(
                y[~rest], left_out.predict_proba(_matrix(frame.filter(pl.Series(~rest)),
                                                         kept))[:, 1])["roc_auc"]
    for o, other in sorted((judge_on or {}).items()):
        if o in names or other.height == 0:
            continue
        yo = other[label].cast(pl.Boolean).to_numpy()
        po = model.predict_proba(_matrix(other, features))[:, 1]
        held_out[o] = (yo, po)
        per_origin[o] = {"accounts": other.height, "positives": int(yo.sum()),
                         "held_out": "not trained on", **ranking_metrics(yo, po)}
    if config.threshold is not None:
        threshold, rule = config.threshold, "given"
    elif len(held_out) > 1:
        threshold, rule = worst_origin_threshold(held_out), "best worst-origin F1"
    else:
        threshold, rule = best_f1_threshold(y, oof), "best out-of-fold F1 (one origin)"
    for o, (yo, po) in held_out.items():
        per_origin[o]["at_threshold"] = at_threshold(yo, po, threshold)
    if log:
        log(f"cross-validated ROC AUC {cv['model']['roc_auc']} (logistic baseline "
            f"{cv['logistic']['roc_auc']}); threshold {threshold:.4f} ({rule})")
    metrics = {"model": spec.name, "accounts": frame.height, "positives": int(y.sum()),
               "cross_validated": cv["model"], "logistic_baseline": cv["logistic"],
               "gain_over_logistic": cv["gain_over_logistic"],
               "threshold_rule": rule, "per_origin": per_origin,
               "at_threshold": at_threshold(y, oof, threshold),
               "calibration": calibration(y, oof)}
    out_of_fold = frame.select(ORIGIN, "platform", "account_id",
                               pl.col(label).cast(pl.Boolean).alias("is_bot")) \
        .with_columns(pl.Series("probability", oof))
    return BotClassifier(model, config, training_fingerprint(frame, label), features,
                         threshold, "+".join(names), metrics, out_of_fold)
