"""Toxicity scoring backends and inflammatory flags (no Dagster here).

A backend turns a list of texts into one row per text and one column per Detoxify label, in
the input order; its ``name`` is the cache key, so two backends that could score a text
differently never share cached scores.

- ``DetoxifyBackend`` runs Detoxify's own loading and ``predict()``, but never lets it reach
  the network: the checkpoint must be a local file (given, or already in the torch hub cache)
  and the Hugging Face hub is held offline while it loads. Anything missing becomes one
  ``ToxicityModelUnavailable`` that says what to set (see shared/specs/detoxify.md: offline,
  Detoxify fails after a download attempt, or 26 s of hub retries, with a deep traceback).
- ``ProfanityBackend`` is the offline default: alt-profanity-check ships a small scikit-learn
  model inside its wheel, about 1,000 times faster than Detoxify on a CPU, but it only knows
  "offensive or not", so it fills the ``toxicity`` column and leaves the others null.

Texts are keyed by ``text_hash`` (sha256 of the exact UTF-8 text), which DuckDB computes the
same way (``text_hash_sql``), so the cache is an anti-join, never a Python loop per post.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import polars as pl

from botpipeline.lazy import lazy

np = lazy("numpy")

LABELS: tuple[str, ...] = ("toxicity", "severe_toxicity", "obscene", "threat", "insult",
                           "identity_attack", "sexual_explicit")
"""Detoxify's labels: ``original`` has the first six, ``unbiased``/``multilingual`` all seven."""

SCORE_SCHEMA: dict[str, pl.DataType] = {label: pl.Float64() for label in LABELS}

HASH_CHARS = 32
"""Hex characters of sha256 kept: 128 bits, no collision among any plausible number of posts."""

SETTINGS_HINT = (
    "Set the toxicity model's `checkpoint` to a local Detoxify .ckpt file and "
    "`huggingface_config_path` to a folder with its transformers config.json and tokenizer "
    "files; or seed TORCH_HOME (hub/checkpoints/<release file>) and HF_HOME from a machine "
    "with network access; or use `backend: \"profanity\"` (offline, ships its own model).")


class ToxicityModelUnavailable(RuntimeError):
    """The configured model cannot be loaded here; the message says what to configure."""


class ToxicityBackend(Protocol):
    name: str

    def score(self, texts: list[str]) -> pl.DataFrame:
        """One row per text, in input order, one Float64 column per label in ``LABELS``."""
        ...


# ------------------------------------------------------------------------------ text hashes
def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


def text_hash_sql(column: str) -> str:
    """The same hash as ``text_hash``, as a DuckDB expression."""
    return f"left(sha256({column}), {HASH_CHARS})"


# -------------------------------------------------------------------------------- flags
def inflammatory_flags(scores: pl.DataFrame, threshold: float = 0.5) -> pl.DataFrame:
    """Seed 003's InflammatoryFlagDB fields per row: ``severity`` (the highest label score),
    ``triggered_categories`` (labels scoring at least ``threshold``), ``is_inflammatory``."""
    labels = [label for label in LABELS if label in scores.columns]
    triggered = pl.concat_list(
        pl.when(pl.col(label) >= threshold).then(pl.lit(label)) for label in labels
    ).list.drop_nulls()
    severity = pl.max_horizontal(labels)
    return scores.select(severity.alias("severity"),
                         triggered.alias("triggered_categories"),
                         (severity >= threshold).fill_null(False).alias("is_inflammatory"))


def inflammatory_flags_sql(threshold: float = 0.5, labels: Sequence[str] = LABELS) -> str:
    """``inflammatory_flags`` as DuckDB select expressions over the label columns."""
    t = float(threshold)
    severity = f"greatest({', '.join(labels)})"  # greatest() skips nulls
    cases = ", ".join(f"CASE WHEN {label} >= {t} THEN '{label}' END" for label in labels)
    return (f"{severity} AS severity, "
            f"list_filter([{cases}], lambda x: x IS NOT NULL) AS triggered_categories, "
            f"coalesce({severity} >= {t}, false) AS is_inflammatory")


# ---------------------------------------------------------------------------- batching
def length_batches(texts: Sequence[str], batch_size: int, *, by_length: bool = True
                   ) -> Iterator[np.ndarray]:
    """Indices of ``texts`` in batches; by length, a batch pads to similar lengths, which is
    about a third faster for tweet-length texts than input order (shared/specs/detoxify.md)."""
    order = (pl.Series(texts, dtype=pl.String).str.len_chars().arg_sort().to_numpy()
             if by_length else np.arange(len(texts)))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def scores_frame(columns: dict[str, np.ndarray | Sequence[float]], rows: int) -> pl.DataFrame:
    """The labels a model gives, the others null, always in ``LABELS`` order."""
    return pl.DataFrame({label: pl.Series(label, columns[label], dtype=pl.Float64)
                         if label in columns else pl.Series(label, [None] * rows, pl.Float64)
                         for label in LABELS})


# ------------------------------------------------------------------- offline default
class ProfanityBackend:
    """alt-profanity-check: a linear SVM on TF-IDF shipped in its wheel; offline, fast, and
    only the ``toxicity`` column (the probability that the text is offensive)."""

    def __init__(self, batch_size: int = 10_000):
        try:
            from profanity_check import predict_prob
        except ImportError as err:
            raise ToxicityModelUnavailable(
                f"backend \"profanity\" needs the alt-profanity-check package ({err}); "
                f"`pip install alt-profanity-check`") from None
        self._predict_prob = predict_prob
        self.batch_size = max(1, batch_size)
        version = importlib.metadata.version("alt-profanity-check")
        self.name = f"alt-profanity-check-{version}:toxicity-only"

    def score(self, texts: list[str]) -> pl.DataFrame:
        out = np.empty(len(texts), dtype=np.float64)
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start:start + self.batch_size]
            out[start:start + len(chunk)] = self._predict_prob(chunk)
        return scores_frame({"toxicity": out}, len(texts))


# ---------------------------------------------------------------------------- Detoxify
def release_checkpoint(model_type: str) -> Path:
    """Where torch.hub keeps Detoxify's released checkpoint for ``model_type``."""
    import torch
    from detoxify.detoxify import MODEL_URLS

    if model_type not in MODEL_URLS:
        raise ToxicityModelUnavailable(
            f"unknown Detoxify model_type {model_type!r}: use one of "
            f"{', '.join(sorted(MODEL_URLS))}, or a local checkpoint. {SETTINGS_HINT}")
    return Path(torch.hub.get_dir()) / "checkpoints" / MODEL_URLS[model_type].rsplit("/", 1)[1]


def file_digest(path: Path, chars: int = 12) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()[:chars]


@contextmanager
def hub_offline() -> Iterator[None]:
    """Hold the Hugging Face hub offline: what is not in a local folder or the HF cache fails
    at once instead of after retries (or a hang on a network that drops packets)."""
    import huggingface_hub.constants as hub
    from transformers.utils import logging as hf_logging

    offline, bars = hub.HF_HUB_OFFLINE, hf_logging.is_progress_bar_enabled()
    hub.HF_HUB_OFFLINE = True
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = offline
        if bars:
            hf_logging.enable_progress_bar()


def resolve_device(device: str) -> str:
    """``cpu``, ``cuda``/``cuda:N`` (must be present), or ``auto`` (CUDA when present)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ToxicityModelUnavailable(
                f"device {device!r} asked for, but torch {torch.__version__} sees no CUDA "
                f"device; set device: \"cpu\" (or \"auto\" to use CUDA only when present)")
        return device
    if device != "cpu":
        raise ToxicityModelUnavailable(
            f"device {device!r} not understood; use \"cpu\", \"cuda\", \"cuda:N\" or \"auto\"")
    return device


class DetoxifyBackend:
    """Detoxify through its own loading and ``predict()``, from local files only."""

    def __init__(self, model_type: str = "original", checkpoint: str | Path | None = None,
                 huggingface_config_path: str | Path | None = None, device: str = "cpu",
                 batch_size: int = 32, quantize: bool = False, *, by_length: bool = True):
        missing = [m for m in ("torch", "detoxify") if importlib.util.find_spec(m) is None]
        if missing:
            raise ToxicityModelUnavailable(
                f"backend detoxify needs {' and '.join(missing)}, the optional extra "
                f"`detoxify`: pip install -e \".[detoxify]\" --extra-index-url "
                f"https://download.pytorch.org/whl/cpu (the CPU build; plain PyPI gives CUDA)")
        self.device = resolve_device(device)
        self.batch_size = max(1, batch_size)
        self.by_length = by_length
        path = Path(checkpoint) if checkpoint else release_checkpoint(model_type)
        if not path.is_file():
            where = "the configured checkpoint" if checkpoint else \
                f"the torch hub cache (TORCH_HOME) for model_type {model_type!r}"
            raise ToxicityModelUnavailable(
                f"Detoxify checkpoint not found: {path} ({where}); nothing is downloaded. "
                f"{SETTINGS_HINT}")
        if huggingface_config_path and not (Path(huggingface_config_path)
                                            / "config.json").is_file():
            raise ToxicityModelUnavailable(
                f"huggingface_config_path {huggingface_config_path} holds no config.json; it "
                f"must be a folder with the transformers config and tokenizer files. "
                f"{SETTINGS_HINT}")
        self.model = self._load(model_type, path, huggingface_config_path)
        self.labels = [label for label in self.model.class_names if label in LABELS]
        self.quantized = bool(quantize) and self.device == "cpu"
        if self.quantized:
            self.model.model = quantize_linear(self.model.model)
        self.checkpoint = path
        self.name = (f"detoxify:{model_type}:{path.name}:{file_digest(path)}"
                     + (":int8" if self.quantized else ""))

    def _load(self, model_type: str, path: Path, huggingface_config_path):
        from detoxify import Detoxify

        try:
            with hub_offline():
                return Detoxify(model_type, checkpoint=str(path), device=self.device,
                                huggingface_config_path=(str(huggingface_config_path)
                                                         if huggingface_config_path else None))
        except Exception as err:  # noqa: BLE001 - OSError, KeyError, ValueError, unpickling
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise ToxicityModelUnavailable(
                f"Detoxify could not load {path} offline ({type(err).__name__}: {first}). "
                f"The checkpoint's transformers config and tokenizer "
                f"(config.arch.args.model_type) must be a local folder given as "
                f"huggingface_config_path or be in the Hugging Face cache (HF_HOME). "
                f"{SETTINGS_HINT}") from None

    def score(self, texts: list[str]) -> pl.DataFrame:
        out = np.empty((len(texts), len(self.labels)), dtype=np.float64)
        for index in length_batches(texts, self.batch_size, by_length=self.by_length):
            result = self.model.predict([texts[i] for i in index])
            # predict() squeezes a batch of one to a bare float
            out[index] = np.column_stack([np.atleast_1d(result[label])
                                          for label in self.labels])
        return scores_frame({label: out[:, i] for i, label in enumerate(self.labels)},
                            len(texts))


def quantize_linear(model):
    """Dynamic int8 quantization of the Linear layers, in place (no second copy of the
    weights): about 2-3 times faster on a CPU for small score differences
    (shared/specs/detoxify.md)."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # eager-mode quantization is deprecated, still works
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
