"""Labelled account lists: ``<data dir>/incoming/labels/<name>/``.

A label set is a folder holding one or more CSVs of ``user_id,label`` (an optional
``platform`` column pins an id to one platform) and, optionally, profile files (``*.json``,
``*.jsonl``, optionally ``.gz``) with one user object per line in Twitter API v1.1 form
(``screen_name``, ``followers_count`` …), v2 form (``username``, ``public_metrics`` …; a
TwiBot-22 export is v2 with epoch-millisecond ``created_at``), or v1.1 tweets whose ``user`` is
taken. Profiles let a set describe accounts the pipeline never ingested; accounts without a
profile are looked up in the lake. A bare ``incoming/labels/<name>.csv`` is a set too.

Bad lines (broken JSON, rows without an id or label, unknown objects) are quarantined with a
reason and counted, never dropped silently; a CSV without the required columns fails with its
path named.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl

from botpipeline.transforms.core_model import ACCOUNT_COLUMNS, conform
from botpipeline.transforms.twitter_v2 import v2_accounts

LABEL_COLUMNS = {"platform": pl.String, "account_id": pl.String, "label": pl.String,
                 "label_source": pl.String}
QUARANTINE_COLUMNS = {"label_set": pl.String, "file": pl.String, "line_number": pl.Int64,
                      "reason": pl.String, "raw": pl.String}
PROFILE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")
V1_USER = {
    "id_str": pl.String, "screen_name": pl.String, "name": pl.String,
    "description": pl.String, "created_at": pl.String, "followers_count": pl.Int64,
    "friends_count": pl.Int64, "statuses_count": pl.Int64, "listed_count": pl.Int64,
    "favourites_count": pl.Int64, "verified": pl.Boolean, "protected": pl.Boolean,
    "default_profile_image": pl.Boolean,
}


class LabelSetError(ValueError):
    """A label file that cannot be read as a label list at all."""


@dataclass(frozen=True)
class LabelSet:
    name: str
    files: tuple[Path, ...]

    @property
    def label_files(self) -> tuple[Path, ...]:
        return tuple(f for f in self.files if f.name.endswith(".csv"))

    @property
    def profile_files(self) -> tuple[Path, ...]:
        return tuple(f for f in self.files if f.name.endswith(PROFILE_SUFFIXES))


@dataclass
class LabelSetData:
    labels: pl.DataFrame       # LABEL_COLUMNS, one row per (platform, account_id)
    profiles: pl.DataFrame     # core account columns, for accounts the set describes itself
    quarantine: pl.DataFrame   # QUARANTINE_COLUMNS


def discover(root: Path) -> dict[str, LabelSet]:
    """Every label set under ``root`` (incoming/labels), by name."""
    sets = {}
    if not root.is_dir():
        return sets
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            files = tuple(sorted(f for f in entry.rglob("*") if f.is_file()
                                 and not f.name.startswith(".")))
            if any(f.name.endswith(".csv") for f in files):
                sets[entry.name] = LabelSet(entry.name, files)
        elif entry.name.endswith(".csv"):
            sets[entry.name[:-4]] = LabelSet(entry.name[:-4], (entry,))
    return sets


def read_label_set(label_set: LabelSet) -> LabelSetData:
    quarantine: list[dict] = []
    labels = [_read_labels(label_set.name, path, quarantine) for path in label_set.label_files]
    frame = (pl.concat(labels, how="vertical_relaxed") if labels
             else pl.DataFrame(schema=LABEL_COLUMNS))
    # An id listed twice keeps its first label; a conflicting second one is quarantined.
    dupes = frame.filter(pl.struct("platform", "account_id").is_duplicated()
                         & ~pl.struct("platform", "account_id").is_first_distinct())
    quarantine.extend({"label_set": label_set.name, "file": row["label_source"],
                       "line_number": None, "reason": "account listed again (first label kept)",
                       "raw": f"{row['account_id']},{row['label']}"}
                      for row in dupes.iter_rows(named=True))
    frame = frame.unique(["platform", "account_id"], keep="first", maintain_order=True)
    profiles = [_read_profiles(label_set.name, path, quarantine)
                for path in label_set.profile_files]
    profile_frame = (pl.concat(profiles).unique(["platform", "account_id"], keep="first",
                                                maintain_order=True)
                     if profiles else pl.DataFrame(schema=ACCOUNT_COLUMNS))
    return LabelSetData(frame, profile_frame,
                        pl.DataFrame(quarantine, schema=QUARANTINE_COLUMNS))


def _read_labels(name: str, path: Path, quarantine: list[dict]) -> pl.DataFrame:
    try:
        raw = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=True)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LabelSetError(f"{path}: not a readable CSV ({exc})") from exc
    raw = raw.rename({c: c.strip().lower() for c in raw.columns})
    if "user_id" not in raw.columns and "id" in raw.columns:  # TwiBot-22's label.csv
        raw = raw.rename({"id": "user_id"})
    missing = {"user_id", "label"} - set(raw.columns)
    if missing:
        raise LabelSetError(f"{path}: a label list needs columns user_id,label "
                            f"(missing {sorted(missing)})")
    raw = raw.with_row_index("line_number", offset=2).with_columns(
        pl.col("user_id").str.strip_chars(), pl.col("label").str.strip_chars())
    bad = raw.filter(pl.col("user_id").is_null() | (pl.col("user_id") == "")
                     | pl.col("label").is_null() | (pl.col("label") == ""))
    quarantine.extend({"label_set": name, "file": path.name, "line_number": row["line_number"],
                       "reason": "row without user_id or label",
                       "raw": f"{row['user_id'] or ''},{row['label'] or ''}"}
                      for row in bad.iter_rows(named=True))
    platform = (pl.col("platform").str.strip_chars().replace("", None)
                if "platform" in raw.columns else pl.lit(None, pl.String))
    return raw.join(bad.select("line_number"), on="line_number", how="anti").select(
        platform.alias("platform"), pl.col("user_id").alias("account_id"), "label",
        pl.lit(path.name).alias("label_source"))


def _lines(path: Path) -> list[bytes]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        return handle.read().split(b"\n")


def _read_profiles(name: str, path: Path, quarantine: list[dict]) -> pl.DataFrame:
    v1, v2 = [], []

    def reject(number: int | None, reason: str, raw: bytes | None = None) -> None:
        quarantine.append({"label_set": name, "file": path.name, "line_number": number,
                           "reason": reason,
                           "raw": raw.decode("utf-8", "replace")[:2000] if raw else None})

    try:
        lines = _lines(path)
    except (OSError, EOFError) as exc:
        reject(None, f"unreadable file: {exc}")
        lines = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            reject(number, f"invalid JSON: {exc}", line)
            continue
        if isinstance(obj, dict) and isinstance(obj.get("user"), dict):
            obj = obj["user"]  # a v1.1 tweet: its author's profile
        if not isinstance(obj, dict):
            reject(number, "not a JSON object", line)
        elif "screen_name" in obj:
            v1.append(obj)
        elif "username" in obj and "id" in obj:
            v2.append(obj)
        else:
            reject(number, "not a v1.1 or v2 user object", line)
    return pl.concat([v1_accounts(v1), v2_accounts(v2, None).drop("source_file", strict=False)],
                     how="vertical_relaxed").pipe(conform, ACCOUNT_COLUMNS)


def v1_accounts(users: list[dict], source: str = "twitter_v1") -> pl.DataFrame:
    """Twitter API v1.1 user objects as core accounts."""
    for user in users:  # v1.1 ids are numbers that lose precision; id_str is the id
        user.setdefault("id_str", str(user.get("id")) if user.get("id") is not None else None)
    frame = pl.DataFrame(users, schema=V1_USER, strict=False)
    return conform(frame.with_columns(
        pl.lit("twitter").alias("platform"), pl.col("id_str").alias("account_id"),
        pl.col("screen_name").alias("username"), pl.col("name").alias("display_name"),
        pl.col("created_at").str.to_datetime("%a %b %d %H:%M:%S %z %Y", strict=False)
        .dt.replace_time_zone(None).dt.cast_time_unit("us").alias("created_at"),
        pl.col("friends_count").alias("following_count"),
        pl.col("statuses_count").alias("post_count"),
        pl.col("favourites_count").alias("like_count"),
        pl.lit(source).alias("source")), ACCOUNT_COLUMNS)
