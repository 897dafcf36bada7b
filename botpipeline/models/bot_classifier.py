"""A learned bot classifier on profile features (transforms/profile_features.py).

scikit-learn's histogram gradient boosting (missing values handled natively, so a field a
source lacks stays missing), with isotonic calibration so the output is a probability.
Training is seeded end to end: the same rows and seed give the same model bytes, hence the
same fingerprint and the same scores. Scoring loads a pickle: no network, no download.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from botpipeline.transforms.profile_features import FEATURES


def training_fingerprint(frame: pl.DataFrame, label: str = "is_bot") -> str:
    """sha256 of the training rows (features and label, in a canonical order)."""
    rows = frame.select("account_id", *FEATURES, label).sort("account_id")
    buffer = io.BytesIO()
    rows.write_ipc(buffer, compression="uncompressed")
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _booster(seed: int) -> CalibratedClassifierCV:
    base = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, max_leaf_nodes=15,
                                          l2_regularization=1.0, random_state=seed)
    return CalibratedClassifierCV(base, method="isotonic",
                                  cv=StratifiedKFold(5, shuffle=True, random_state=seed))


def _logistic():
    """The simple baseline the issue measured: a logistic regression on the same features."""
    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                         LogisticRegression(max_iter=2000))


def usable_features(frame: pl.DataFrame) -> tuple[str, ...]:
    """The features the training rows actually carry: a field the source never has (v2
    users have no favourites) cannot be learned from, so it is left out, and recorded."""
    return tuple(c for c in FEATURES if frame[c].null_count() < frame.height)


def _matrix(frame: pl.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    return frame.select(pl.col(c).cast(pl.Float64) for c in features).to_numpy()


@dataclass
class BotClassifier:
    model: CalibratedClassifierCV
    seed: int
    trained_on: str                      # training-set fingerprint
    features: tuple[str, ...] = FEATURES
    metrics: dict = field(default_factory=dict)

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"features missing from the frame: {missing}")
        return self.model.predict_proba(_matrix(frame, self.features))[:, 1]

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=5)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(pickle.dumps(self.model, protocol=5)).hexdigest()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(path)

    @staticmethod
    def load(path: Path) -> "BotClassifier":
        return pickle.loads(path.read_bytes())


def cross_validated(frame: pl.DataFrame, seed: int = 0, folds: int = 5,
                    label: str = "is_bot") -> dict:
    """Out-of-fold ROC AUC and PR AUC of the booster and of the logistic baseline."""
    x, y = _matrix(frame, usable_features(frame)), frame[label].cast(pl.Int8).to_numpy()
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    result = {}
    for name, model in (("gradient_boosting", _booster(seed)), ("logistic", _logistic())):
        p = cross_val_predict(model, x, y, cv=split, method="predict_proba")[:, 1]
        result[name] = {"roc_auc": round(float(roc_auc_score(y, p)), 4),
                        "pr_auc": round(float(average_precision_score(y, p)), 4)}
        if name == "gradient_boosting":
            result["oof_probability"] = p
    return result


def train(frame: pl.DataFrame, seed: int = 0, label: str = "is_bot") -> BotClassifier:
    features = usable_features(frame)
    model = _booster(seed).fit(_matrix(frame, features), frame[label].cast(pl.Int8).to_numpy())
    return BotClassifier(model, seed, training_fingerprint(frame, label), features)
