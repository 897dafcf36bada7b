"""Fitted models as versioned folders: ``<data dir>/models/<name>/<version>/``.

Each folder is what BotClassifier.save writes: the estimator in skops form (``model.skops``;
loading it runs no code from the file), ``model.json`` (scikit-learn version, sha256 of every
file, features, threshold, metrics) and the out-of-fold scores; BotClassifier.load checks
the version and the hashes. ``current`` names the version the scoring assets use; it is
replaced atomically, so a reader sees the old model or the new one, never a half-written
file. Old versions are kept: a score row names its model version, and that folder can be
loaded again to explain it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # scikit-learn is imported only when a model is saved or loaded
    from botpipeline.models.bot_classifier import BotClassifier


class ModelStore:
    def __init__(self, root: Path, name: str = "bot_classifier"):
        self.folder = (Path(root) if isinstance(root, str) else root) / name  # or a UPath

    def path(self, version: str) -> Path:
        return self.folder / version

    def save(self, model: BotClassifier) -> Path:
        path = self.path(model.version)
        model.save(path)
        pointer = self.folder / ".current.tmp"
        pointer.write_text(model.version + "\n")
        pointer.rename(self.folder / "current")  # replaces atomically (POSIX; a copy on S3)
        return path

    def current_version(self) -> str | None:
        pointer = self.folder / "current"
        return pointer.read_text().strip() if pointer.exists() else None

    def current(self) -> BotClassifier | None:
        """The current model, checked (ModelFileError says what is wrong and what to do)."""
        from botpipeline.models.bot_classifier import BotClassifier

        version = self.current_version()
        return BotClassifier.load(self.path(version)) if version else None
