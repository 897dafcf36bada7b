"""Reader for OASIS simulation runs (the BotSocial dataset layout), found by content.

A run folder holds the dataset (JSON lines, one post each: ``post_id``, ``thread_id``,
``user_id``, ``parent_id``, ``timestamp`` = simulation step as a string, ``text``, labels,
``persona_id``), the personas (CSV, one row per persona, fields with quoted newlines), the
follow edges (CSV ``follower_id,followee_id``) and a manifest (YAML). File names vary from run to
run (``prod_x_dataset.jsonl``, ``modal_dataset_6500.jsonl``, ...), so each file is recognized
by what it holds, not by its name (:func:`discover_run`); an ``id, username`` JSON-lines file
(OASIS's ``*_training.jsonl``) is read as each post's author username. Which persona row is
which user is decided by transforms/oasis_personas.py: the dataset's ``persona_id`` is the
authority, row order is used only when it agrees with it.

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

from botpipeline.transforms.oasis_personas import PersonaAssignment, assign_personas

POST_SCHEMA = {
    "post_id": pl.String, "thread_id": pl.String, "user_id": pl.String,
    "parent_id": pl.String, "timestamp": pl.String, "text": pl.String,
    "category_labels": pl.List(pl.String), "split": pl.String, "provenance": pl.String,
    "persona_id": pl.String, "needs_thread_context": pl.Boolean,
    "username": pl.String,  # a per-post author username, when the dataset carries one
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


ROLES = ("dataset", "personas", "edges", "manifest", "post_usernames")
REQUIRED = ("dataset", "personas")
POST_KEYS = {"post_id", "user_id"}
POST_HINT_KEYS = {"thread_id", "parent_id", "timestamp", "persona_id"}
USERNAME_KEYS = {"id", "username"}
EDGE_COLUMNS = {"follower_id", "followee_id"}
PERSONA_LABEL_COLUMNS = {"primary_label", "persona"}
# Among several files of one role, a name with this word wins (e.g. *_dataset.jsonl over the
# superset *_full.jsonl of the same run).
PREFERRED_WORD = {"dataset": "dataset", "personas": "persona", "edges": "edge",
                  "manifest": "manifest", "post_usernames": "training"}


class OasisRunError(ValueError):
    """A run folder whose files are missing or ambiguous; the message names them."""


@dataclass
class RunFiles:
    """Which file plays which role, and why the others were left out."""

    run_dir: Path
    roles: dict[str, Path]
    ignored: dict[str, str] = field(default_factory=dict)
    how: dict[str, str] = field(default_factory=dict)

    def get(self, role: str) -> Path | None:
        return self.roles.get(role)


@dataclass
class OasisRun:
    run_id: str
    posts: pl.DataFrame
    personas: pl.DataFrame
    """One row per user: the persona assignment (transforms/oasis_personas.py)."""
    follows: pl.DataFrame
    manifest: dict
    quarantine: pl.DataFrame
    files: dict[str, str] = field(default_factory=dict)
    assignment: PersonaAssignment | None = None
    ignored_files: dict[str, str] = field(default_factory=dict)


def _first_json_object(path: Path) -> dict | None:
    """The first non-blank line of a JSON-lines file as a dict (None if it is not one)."""
    try:
        with path.open("rb") as fh:
            for _, line in zip(range(50), fh):
                if line.strip():
                    value = orjson.loads(line)
                    return value if isinstance(value, dict) else None
    except (OSError, orjson.JSONDecodeError):
        return None
    return None


def _csv_header(path: Path) -> set[str]:
    try:
        return {c.strip().lstrip("\ufeff") for c in
                pl.read_csv(path, n_rows=0, infer_schema=False).columns}
    except (OSError, pl.exceptions.PolarsError):
        return set()


def classify(path: Path) -> tuple[str | None, str]:
    """(role, reason) of one file of a run folder, from its content."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        first = _first_json_object(path)
        if first is None:
            return None, "not JSON lines of objects"
        keys = set(first)
        if POST_KEYS <= keys and keys & POST_HINT_KEYS:
            return "dataset", "JSON lines of OASIS posts"
        if USERNAME_KEYS <= keys:
            return "post_usernames", "JSON lines naming each post's author (id, username)"
        return None, f"JSON lines with keys {sorted(keys)[:8]}, not OASIS posts"
    if suffix in (".csv", ".tsv"):
        header = _csv_header(path)
        if EDGE_COLUMNS <= header:
            return "edges", "CSV of follow edges"
        if header & PERSONA_LABEL_COLUMNS or {"username", "description"} <= header:
            return "personas", "CSV of persona rows"
        return None, f"CSV with columns {sorted(header)[:8]}, neither personas nor edges"
    if suffix in (".yaml", ".yml"):
        try:
            value = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            return None, "unreadable YAML"
        if isinstance(value, dict) and ({"run_id", "population"} & set(value)):
            return "manifest", "YAML manifest"
        return None, "YAML without run_id or population"
    return None, "not a run file type (.jsonl, .csv, .yaml)"


def discover_run(run_dir: str | Path, files: dict[str, str] | None = None) -> RunFiles:
    """Find the dataset, personas, edges, manifest (and per-post usernames) by content.

    ``files`` (role -> file name in the folder) overrides discovery for those roles. Several
    candidates for one role: the manifest's ``personas_csv`` / ``edges_csv`` name wins, then a
    single name containing the role's word (``dataset``, ``persona``, ...); otherwise the run
    is ambiguous and an :class:`OasisRunError` names the candidates. A missing dataset or
    personas file is an error naming what was found instead.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise OasisRunError(f"OASIS run folder {run_dir} does not exist")
    files = files or {}
    unknown = set(files) - set(ROLES)
    if unknown:
        raise OasisRunError(f"OASIS run {run_dir.name}: unknown file roles {sorted(unknown)} "
                            f"(known: {list(ROLES)})")
    candidates: dict[str, list[Path]] = {role: [] for role in ROLES}
    ignored: dict[str, str] = {}
    how: dict[str, str] = {}
    chosen: dict[str, Path] = {}
    for role, name in files.items():
        path = run_dir / name
        if not path.is_file():
            raise OasisRunError(f"OASIS run {run_dir.name}: the configured {role} file "
                                f"{name!r} is not in {run_dir}")
        chosen[role] = path
        how[role] = "named in run config"
    for path in sorted(p for p in run_dir.iterdir() if p.is_file()):
        if path.name.startswith(".") or path in chosen.values():
            continue
        role, reason = classify(path)
        if role is None:
            ignored[path.name] = reason
        elif role in chosen:
            ignored[path.name] = f"{reason}; the run config names {chosen[role].name}"
        else:
            candidates[role].append(path)
    manifest = chosen.get("manifest") or (candidates["manifest"][0]
                                          if len(candidates["manifest"]) == 1 else None)
    named = {}
    if manifest is not None:
        try:
            data = yaml.safe_load(manifest.read_text()) or {}
        except yaml.YAMLError:
            data = {}
        for role, key in (("personas", "personas_csv"), ("edges", "edges_csv"),
                          ("dataset", "dataset_jsonl")):
            if isinstance(data, dict) and data.get(key):
                named[role] = Path(str(data[key])).name
    for role, found in candidates.items():
        if role in chosen or not found:
            continue
        pick, why = None, ""
        if len(found) == 1:
            pick, why = found[0], "the only file of its kind"
        else:
            by_manifest = [p for p in found if p.name == named.get(role)]
            by_word = [p for p in found if PREFERRED_WORD[role] in p.name.lower()]
            if len(by_manifest) == 1:
                pick, why = by_manifest[0], "named in the manifest"
            elif len(by_word) == 1:
                pick, why = by_word[0], f"the only one whose name has {PREFERRED_WORD[role]!r}"
            else:
                raise OasisRunError(
                    f"OASIS run {run_dir.name}: {len(found)} files could be the {role} "
                    f"({', '.join(p.name for p in found)}); name one in the run config "
                    f"(files: {{{role}: <file name>}})")
        chosen[role] = pick
        how[role] = why
        for other in found:
            if other != pick:
                ignored[other.name] = f"also a {role} candidate; {pick.name} is {why}"
    missing = [role for role in REQUIRED if role not in chosen]
    if missing:
        seen = ", ".join(f"{k} ({v})" for k, v in ignored.items()) or "no files"
        raise OasisRunError(
            f"OASIS run {run_dir.name}: no {' and no '.join(missing)} file found in {run_dir}"
            f" (a dataset is JSON lines with post_id and user_id; personas a CSV with "
            f"primary_label or username and description). Found: {seen}")
    return RunFiles(run_dir, chosen, ignored, how)


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


def _read_post_usernames(path: Path) -> pl.DataFrame:
    """(post_id, username) from an ``id, username`` JSON-lines file; unusable lines skipped."""
    frame = pl.read_ndjson(path, schema={"id": pl.String, "username": pl.String},
                           ignore_errors=True)
    return frame.select(pl.col("id").alias("post_id"), "username").drop_nulls()


def read_run(run_dir: str | Path, clock: StepClock = StepClock(),
             files: dict[str, str] | None = None) -> OasisRun:
    found = discover_run(run_dir, files)
    run_dir = found.run_dir
    dataset = found.roles["dataset"]
    personas_path = found.roles["personas"]
    edges_path = found.get("edges")
    manifest_path = found.get("manifest")

    posts, quarantine = _read_posts(dataset)
    step = pl.col("timestamp").cast(pl.Int64, strict=False)
    posts = (posts.with_columns(step.alias("step"))
             .with_columns(pl.int_range(pl.len()).over("step").alias("_i"),
                           pl.len().over("step").alias("_n"))
             .with_columns(clock.expr(pl.col("step"), pl.col("_i"), pl.col("_n"))
                           .alias("created_at"))
             .drop("_i", "_n"))

    rows = pl.read_csv(personas_path, infer_schema=False)
    rows = rows.rename({c: c.strip().lstrip("\ufeff") for c in rows.columns})
    follows = (pl.read_csv(edges_path, schema={"follower_id": pl.String,
                                               "followee_id": pl.String})
               if edges_path else pl.DataFrame(schema={"follower_id": pl.String,
                                                       "followee_id": pl.String}))
    # Per-post usernames: the dataset's own field first, else a companion file.
    links = posts.select("post_id", "user_id", "username").drop_nulls()
    if links.height == 0 and found.get("post_usernames"):
        links = posts.select("post_id", "user_id").join(
            _read_post_usernames(found.roles["post_usernames"]), on="post_id")
    assignment = assign_personas(
        posts, rows, links.select("user_id", "username"),
        pl.concat([follows["follower_id"], follows["followee_id"]]))
    manifest = yaml.safe_load(manifest_path.read_text()) if manifest_path else {}
    run_id = str(manifest.get("run_id") or run_dir.name)
    names = {role: path.name for role, path in found.roles.items()}
    return OasisRun(run_id, posts, assignment.users, follows, manifest, quarantine, names,
                    assignment, found.ignored)
