"""Fitted models as versioned files: ``<data dir>/models/<name>/<version>.pkl``.

``current`` names the version the scoring assets use; it is replaced atomically, so a reader
sees the old model or the new one, never a half-written file. Old versions are kept: a score
row names its model version, and that file can be loaded again to explain it.
"""

from __future__ import annotations

import os
from pathlib import Path

from botpipeline.models.bot_classifier import BotClassifier


class ModelStore:
    def __init__(self, root: Path, name: str = "bot_classifier"):
        self.folder = Path(root) / name

    def path(self, version: str) -> Path:
        return self.folder / f"{version}.pkl"

    def save(self, model: BotClassifier) -> Path:
        path = self.path(model.version)
        model.save(path)
        pointer = self.folder / ".current.tmp"
        pointer.write_text(model.version + "\n")
        os.replace(pointer, self.folder / "current")
        return path

    def current_version(self) -> str | None:
        pointer = self.folder / "current"
        return pointer.read_text().strip() if pointer.exists() else None

    def current(self) -> BotClassifier | None:
        version = self.current_version()
        return BotClassifier.load(self.path(version)) if version else None
