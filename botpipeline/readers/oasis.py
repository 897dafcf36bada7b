"""Reader for OASIS simulation runs (the BotSocial dataset layout).

A run folder holds ``*_dataset.jsonl`` (posts: ``post_id``, ``thread_id``, ``user_id``,
``parent_id``, ``timestamp`` = simulation step as a string, ``text``, labels, persona),
``personas_*.csv`` (one row per user, row i is ``user_id`` i; fields with quoted newlines),
``edges_*.csv`` (``follower_id,followee_id``) and ``manifest_*.yaml``.

Simulation steps become timestamps by a documented rule (``StepClock``); the raw step is kept.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import polars as pl
import yaml

POST_SCHEMA = {
    "post_id": pl.String, "thread_id": pl.String, "user_id": pl.String,
    "parent_id": pl.String, "timestamp": pl.String, "text": pl.String,
    "category_labels": pl.List(pl.String), "split": pl.String, "provenance": pl.String,
    "persona_id": pl.String, "needs_thread_context": pl.Boolean,
}


@dataclass(frozen=True)
class StepClock:
    """Map simulation steps to times.

    Step ``s`` spans ``[start + s * step, start + (s + 1) * step)``. The posts of one step are
    spread evenly over it in file order, so the order of the file is kept within a step and
    step order across steps: ``created_at = start + (s + i / n) * step`` for the i-th of n
    posts of step s.
    """

    start: datetime = datetime(2025, 1, 1)
    step: timedelta = timedelta(hours=1)

    def expr(self, step: pl.Expr, index_in_step: pl.Expr, posts_in_step: pl.Expr) -> pl.Expr:
        offset_us = ((step.cast(pl.Float64) + index_in_step / posts_in_step)
                     * (self.step / timedelta(microseconds=1)))
        return pl.lit(self.start) + pl.duration(microseconds=offset_us.round().cast(pl.Int64))


@dataclass
class OasisRun:
    run_id: str
    posts: pl.DataFrame
    personas: pl.DataFrame
    follows: pl.DataFrame
    manifest: dict
    quarantine: pl.DataFrame
    files: dict[str, str] = field(default_factory=dict)


def _one(run_dir: Path, pattern: str, required: bool = True) -> Path | None:
    found = sorted(run_dir.glob(pattern))
    if not found:
        if required:
            raise FileNotFoundError(f"OASIS run {run_dir.name}: no file matching {pattern!r} "
                                    f"in {run_dir}")
        return None
    if len(found) > 1:
        raise ValueError(f"OASIS run {run_dir.name}: several files match {pattern!r}: "
                         f"{[p.name for p in found]}")
    return found[0]


def _read_posts(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Posts, and quarantined lines (bad JSON, missing ids, unknown parents stay posts)."""
    data = path.read_bytes()
    bad: list[dict] = []
    try:
        frame = pl.read_ndjson(io.BytesIO(data), schema=POST_SCHEMA)
        numbers = list(range(1, frame.height + 1)) if b"\n\n" not in data else None
    except pl.exceptions.PolarsError:
        frame, numbers = None, None
    if frame is None or numbers is None:  # slow path: find the bad lines
        good, numbers = [], []
        for number, line in enumerate(data.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
                if not isinstance(value, dict):
                    raise ValueError("not a JSON object")
                good.append(line)
                numbers.append(number)
            except (orjson.JSONDecodeError, ValueError) as exc:
                bad.append({"line_number": number, "reason": f"invalid JSON: {exc}",
                            "raw": line})
        frame = pl.read_ndjson(io.BytesIO(b"\n".join(good)), schema=POST_SCHEMA) if good \
            else pl.DataFrame(schema=POST_SCHEMA)
    frame = frame.with_columns(pl.Series("source_line", numbers, dtype=pl.Int64))
    missing = frame.filter(pl.col("post_id").is_null() | pl.col("user_id").is_null())
    if missing.height:
        lines = data.split(b"\n")
        bad.extend({"line_number": n, "reason": "post without post_id or user_id",
                    "raw": lines[n - 1]} for n in missing["source_line"])
        frame = frame.filter(pl.col("post_id").is_not_null() & pl.col("user_id").is_not_null())
    quarantine = pl.DataFrame(bad, schema={"line_number": pl.Int64, "reason": pl.String,
                                           "raw": pl.Binary})
    return frame, quarantine.with_columns(pl.lit(path.name).alias("source_file"))


def read_run(run_dir: str | Path, clock: StepClock = StepClock()) -> OasisRun:
    run_dir = Path(run_dir)
    dataset = _one(run_dir, "*_dataset.jsonl")
    personas_path = _one(run_dir, "personas_*.csv")
    edges_path = _one(run_dir, "edges_*.csv", required=False)
    manifest_path = _one(run_dir, "manifest_*.yaml", required=False)

    posts, quarantine = _read_posts(dataset)
    step = pl.col("timestamp").cast(pl.Int64, strict=False)
    posts = (posts.with_columns(step.alias("step"))
             .with_columns(pl.int_range(pl.len()).over("step").alias("_i"),
                           pl.len().over("step").alias("_n"))
             .with_columns(clock.expr(pl.col("step"), pl.col("_i"), pl.col("_n"))
                           .alias("created_at"))
             .drop("_i", "_n"))

    personas = (pl.read_csv(personas_path, infer_schema=False)
                .with_row_index("user_id")
                .with_columns(pl.col("user_id").cast(pl.String)))
    follows = (pl.read_csv(edges_path, schema={"follower_id": pl.String,
                                               "followee_id": pl.String})
               if edges_path else pl.DataFrame(schema={"follower_id": pl.String,
                                                       "followee_id": pl.String}))
    manifest = yaml.safe_load(manifest_path.read_text()) if manifest_path else {}
    run_id = str(manifest.get("run_id") or run_dir.name)
    files = {"dataset": dataset.name, "personas": personas_path.name}
    if edges_path:
        files["edges"] = edges_path.name
    if manifest_path:
        files["manifest"] = manifest_path.name
    return OasisRun(run_id, posts, personas, follows, manifest, quarantine, files)
