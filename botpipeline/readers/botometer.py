"""Reader for Botometer score exports (botometer-python v4 results and BotometerLite), as CSV.

Botometer results come to us as CSV files written by whoever ran the lookups, so the column
names vary: pandas ``json_normalize`` of v4 results gives ``user.user_data.id_str``,
``raw_scores.universal.overall``, ``display_scores.english.spammer``, ``cap.universal``; other
scripts flatten with ``_`` or keep only the category names (``overall``, ``fake_follower``);
BotometerLite gives ``user_id`` and ``botscore``. Names are matched case-insensitively with
``.``, ``/``, ``-`` and spaces read as ``_``.

Every file is normalized to ``SCORES_SCHEMA``, one row per account.

* Language: the study uses the ``universal`` (language-independent) model. Per row, when any
  universal score is present all scores come from universal columns; only rows without any
  universal score fall back to ``english``. Columns without a language (``overall``, ...) fill
  categories that the chosen language leaves empty. ``cap`` follows the same rule.
* Scale: v4 raw scores lie in [0, 1]; the website's display scores lie in [0, 5].
  ``display_scores.*`` columns are divided by 5 and ``raw_scores.*`` are taken as they are.
  For columns whose name does not say (``universal.overall``, ``overall``, ``botscore``), with
  ``scale="auto"`` a group of columns is read as the display scale when its largest numeric
  value is above 1 and at most 5; the category scores of one group are judged together, since a
  display-scale column can hold only values <= 1 by chance. A raw-scale file whose only bad value
  is, say, 1.3 is therefore read as display scale; pass ``scale="raw"`` (or ``"display"``) to
  decide instead. ``cap`` is a probability and is never rescaled.
* Quarantine: a row is quarantined when it has neither a digits-only account id nor a usable
  screen name, when a score it uses is not a number or lies outside [0, 1] after scaling, or
  when it carries no score at all (failed lookups). Blank cells and ``nan``/``NA``/``null``
  count as missing, not as bad; a decimal comma (``0,42``, Danish Excel) reads as a point. A
  file that cannot be read, is empty, has no header row or no recognized id and score columns
  gives one file-level row. Rows with the wrong number of fields are quarantined one by one.

Several rows for one account in a file (repeated lookups) collapse into one as in
``merge_botometer``. Line numbers are those of the record's first line (1 is the header); ``raw`` holds the
record's original text.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Literal

import polars as pl

from botpipeline.readers.twitterstream.messages import QUARANTINE_SCHEMA

CATEGORIES = ("overall", "astroturf", "fake_follower", "financial", "other", "self_declared",
              "spammer")
SCORE_COLUMNS = tuple(f"botometer_{c}" for c in CATEGORIES)
SCORES_SCHEMA = {
    "account_id": pl.String, "username": pl.String,
    **{name: pl.Float64 for name in SCORE_COLUMNS},
    "botometer_cap": pl.Float64, "botometer_lite": pl.Float64, "source_file": pl.String,
}

_ID_KEYS = ("user_user_data_id_str", "user_id_str", "user_user_data_id", "user_id", "id_str",
            "account_id", "userid", "id")
_NAME_KEYS = ("user_user_data_screen_name", "user_screen_name", "screen_name", "username",
              "handle")
_LITE_KEYS = ("botscore", "botometer_lite", "bot_score_lite")
_CAP_KEYS = {"universal": ("cap_universal",), "english": ("cap_english",),
             None: ("cap", "botometer_cap")}
# Families of category columns: language, scale (None: decided from the data), name patterns.
# Within a language the order is the preference: raw, then unlabelled, then display scores.
_FAMILIES: tuple[tuple[str | None, float | None, tuple[str, ...]], ...] = (
    ("universal", 1.0, ("raw_scores_universal_{}",)),
    ("universal", None, ("universal_{}", "scores_universal_{}")),
    ("universal", 5.0, ("display_scores_universal_{}",)),
    ("english", 1.0, ("raw_scores_english_{}",)),
    ("english", None, ("english_{}", "scores_english_{}")),
    ("english", 5.0, ("display_scores_english_{}",)),
    (None, None, ("{}", "botometer_{}", "raw_scores_{}")),
)
_MISSING = ("", "nan", "na", "n/a", "null", "none")
_USERNAME = r"^[A-Za-z0-9_]{1,50}$"

Scale = Literal["auto", "raw", "display"]


def _key(name: str) -> str:
    return re.sub(r"[.\s/\-]+", "_", name.strip().lower()).strip("_")


def _file_problem(source: str, reason: str, raw: bytes | None = None
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    quarantine = pl.DataFrame(
        {"source_file": [source], "source_member": [None], "line_number": [None],
         "scope": ["file"], "reason": [reason], "raw": [raw]}, schema=QUARANTINE_SCHEMA)
    return pl.DataFrame(schema=SCORES_SCHEMA), quarantine


def _looks_numeric(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _clean(column: str) -> pl.Expr:
    """Stripped text, null for blank cells and the usual missing-value markers."""
    text = pl.col(column).str.strip_chars()
    return pl.when(text.str.to_lowercase().is_in(_MISSING)).then(None).otherwise(text)


def _parse_records(text: str
                   ) -> tuple[list[str], list[list[str]], list[int], list[bytes], list[dict]]:
    """Header, rows, first line numbers, raw text; ragged rows go to the problem list."""
    lines = io.StringIO(text, newline="").readlines()
    first = lines[0] if lines else ""
    separator = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(lines, delimiter=separator)
    header = next(reader)
    rows, numbers, raws, problems = [], [], [], []
    end = reader.line_num
    for record in reader:
        start, end = end + 1, reader.line_num
        if not record or not "".join(record).strip():
            continue
        raw = "".join(lines[start - 1:end]).rstrip("\r\n").encode()
        if len(record) != len(header):
            problems.append({"line_number": start, "raw": raw,
                             "reason": f"expected {len(header)} fields, got {len(record)}"})
            continue
        rows.append(record)
        numbers.append(start)
        raws.append(raw)
    return header, rows, numbers, raws, problems


def _number(text: pl.Expr) -> pl.Expr:
    """Float or null; a decimal comma (Danish Excel: ``;`` separators, ``0,42``) is a point."""
    return text.str.replace(r"^([+-]?\d*),(\d+)$", "${1}.${2}").cast(pl.Float64, strict=False)


def _family_scale(frame: pl.DataFrame, columns: list[str], fixed: float | None,
                  scale: Scale) -> float:
    """Divisor of one group of columns: fixed by its name, by ``scale``, or by its maximum."""
    if fixed is not None:
        return fixed
    if scale != "auto":
        return 1.0 if scale == "raw" else 5.0
    values = frame.select(pl.concat([_number(pl.col(c)) for c in columns])).to_series()
    top = values.filter(values.is_finite()).max()
    return 5.0 if top is not None and 1.0 < top <= 5.0 else 1.0


def read_botometer_csv(path: Path, *, source_name: str | None = None,
                       scale: Scale = "auto") -> tuple[pl.DataFrame, pl.DataFrame]:
    """Scores (``SCORES_SCHEMA``, one row per account) and quarantine rows of one CSV file."""
    path = Path(path)
    source = source_name or path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _file_problem(source, f"unreadable file: {exc}")
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        return _file_problem(source, "empty file")
    try:
        text = data.decode("utf-8")
        header, rows, numbers, raws, problems = _parse_records(text)
    except (UnicodeDecodeError, csv.Error) as exc:
        return _file_problem(source, f"not a readable CSV file: {exc}", data[:1000])
    header_raw = data.split(b"\n", 1)[0].rstrip(b"\r")
    if any(_looks_numeric(name) for name in header):
        return _file_problem(source, "no header row (the first line looks like data)",
                             header_raw)

    keys: dict[str, str] = {}  # normalized name -> first column with it
    for i, name in enumerate(header):
        keys.setdefault(_key(name), f"c{i}")
    id_col = next((keys[k] for k in _ID_KEYS if k in keys), None)
    name_col = next((keys[k] for k in _NAME_KEYS if k in keys), None)
    lite_col = next((keys[k] for k in _LITE_KEYS if k in keys), None)
    families = []  # (language, scale, {category: column})
    for language, fixed, patterns in _FAMILIES:
        found = {c: keys[k] for c in CATEGORIES
                 for k in [next((p.format(c) for p in patterns if p.format(c) in keys), None)]
                 if k is not None}
        if found:
            families.append((language, fixed, found))
    cap_cols = [(lang, keys[k]) for lang, names in _CAP_KEYS.items() for k in names if k in keys]
    if id_col is None and name_col is None:
        return _file_problem(source, "no recognized Botometer columns: need an account id "
                             "(user.user_data.id_str, user_id, ...) or screen_name column",
                             header_raw)
    if not families and lite_col is None:
        return _file_problem(source, "no recognized Botometer score columns "
                             "(raw_scores.universal.overall, botscore, ...)", header_raw)

    frame = pl.DataFrame([list(col) for col in zip(*rows)] if rows else
                         [[] for _ in header],
                         schema={f"c{i}": pl.String for i in range(len(header))},
                         orient="col")
    frame = frame.with_columns(
        *[_clean(c).alias(c) for c in frame.columns],
        pl.Series("_line", numbers, dtype=pl.Int64), pl.Series("_raw", raws, dtype=pl.Binary))
    scored = frame.select(pl.col("_line"), pl.col("_raw"), *_score_exprs(
        frame, id_col, name_col, lite_col, families, cap_cols, scale))

    bad = scored.filter(pl.col("_reason").is_not_null())
    quarantine = pl.concat([
        pl.DataFrame(problems, schema={"line_number": pl.Int64, "raw": pl.Binary,
                                       "reason": pl.String}),
        bad.select(pl.col("_line").alias("line_number"), pl.col("_raw").alias("raw"),
                   pl.col("_reason").alias("reason")),
    ]).sort("line_number").select(
        pl.lit(source).alias("source_file"), pl.lit(None, pl.String).alias("source_member"),
        "line_number", pl.lit("line").alias("scope"), "reason", "raw")
    scores = (scored.filter(pl.col("_reason").is_null())
              .with_columns(pl.lit(source).alias("source_file"))
              .select(list(SCORES_SCHEMA)).cast(SCORES_SCHEMA))
    return merge_botometer([scores]), quarantine.cast(QUARANTINE_SCHEMA)


def _score_exprs(frame: pl.DataFrame, id_col: str | None, name_col: str | None,
                 lite_col: str | None, families: list, cap_cols: list[tuple[str | None, str]],
                 scale: Scale) -> list[pl.Expr]:
    """Account id, username, the scores, and ``_reason`` (null for a good row)."""
    null = pl.lit(None, pl.String)
    raw_id = pl.col(id_col) if id_col else null
    raw_name = pl.col(name_col).str.strip_prefix("@") if name_col else null
    account_id = pl.when(raw_id.str.contains(r"^\d+$")).then(raw_id)
    username = pl.when(raw_name.str.contains(_USERNAME)).then(raw_name)
    reasons = [pl.when(account_id.is_null() & username.is_null()).then(pl.format(
        "no usable account id or screen name (id={}, screen_name={})",
        raw_id.fill_null("<missing>"), raw_name.fill_null("<missing>")))]

    has = {lang: pl.any_horizontal([pl.col(c).is_not_null() for lng, _, found in families
                                    if lng == lang for c in found.values()] or [pl.lit(False)])
           for lang in ("universal", "english")}
    use = {"universal": has["universal"], "english": ~has["universal"] & has["english"],
           None: pl.lit(True)}
    outputs = [account_id.alias("account_id"), username.alias("username")]
    any_score = []

    def value(name: str, candidates: list[tuple[pl.Expr, str, float]]) -> pl.Expr:
        """Pick the first candidate cell present, parse, scale, and record why it is bad."""
        if not candidates:
            outputs.append(pl.lit(None, pl.Float64).alias(name))
            return pl.lit(False)
        text = pl.coalesce([pl.when(cond).then(pl.col(col)) for cond, col, _ in candidates])
        divisor = pl.coalesce([pl.when(cond & pl.col(col).is_not_null()).then(pl.lit(s))
                               for cond, col, s in candidates])
        number = _number(text)
        scaled = number / divisor
        in_range = scaled.is_finite() & (scaled >= 0) & (scaled <= 1)
        note = pl.when(divisor == 5).then(pl.lit(" after dividing by 5 (display scale)")
                                          ).otherwise(pl.lit(""))
        reasons.append(
            pl.when(text.is_not_null() & number.is_null())
            .then(pl.format("{}={} is not a number", pl.lit(name), text))
            .when(number.is_not_null() & ~in_range)
            .then(pl.format("{}={} is outside [0, 1]{}", pl.lit(name), text, note)))
        outputs.append(scaled.alias(name))
        return text.is_not_null()

    scales = [_family_scale(frame, list(found.values()), fixed, scale)
              for _, fixed, found in families]
    for category, name in zip(CATEGORIES, SCORE_COLUMNS):
        candidates = [(use[lang], found[category], s)
                      for (lang, _, found), s in zip(families, scales)
                      if category in found]  # _FAMILIES order: flat columns fill gaps
        any_score.append(value(name, candidates))

    # cap: the chosen language's column, else the unlabelled one; rows without a language
    # take universal, then english.
    cap_use = {"universal": ~use["english"], "english": ~has["universal"], None: pl.lit(True)}
    value("botometer_cap", [(cap_use[lang], col, 1.0) for lang, col in cap_cols])
    lite_scale = _family_scale(frame, [lite_col], None, scale) if lite_col else 1.0
    any_score.append(value("botometer_lite",
                           [(pl.lit(True), lite_col, lite_scale)] if lite_col else []))
    reasons.append(pl.when(~pl.any_horizontal(any_score)).then(pl.lit("no score values")))
    joined = pl.concat_str(reasons, separator="; ", ignore_nulls=True)
    outputs.append(pl.when(joined != "").then(joined).alias("_reason"))
    return outputs


def _merge_key(frame: pl.DataFrame) -> pl.Expr:
    """Account id; else the id another row gives the same screen name; else the screen name."""
    known = (frame.filter(pl.col("account_id").is_not_null() & pl.col("username").is_not_null())
             .select(pl.col("username").str.to_lowercase().alias("_name"), "account_id")
             .unique("_name", keep="first", maintain_order=True))
    names = dict(zip(known["_name"], known["account_id"]))
    return pl.coalesce(
        pl.col("account_id"),
        pl.col("username").str.to_lowercase().replace_strict(names, default=None,
                                                             return_dtype=pl.String),
        pl.lit("@") + pl.col("username").str.to_lowercase())


def merge_botometer(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """One row per account over several score frames: the first non-null value per column.

    Frames earlier in the list win where two disagree. Rows are matched on account id, and on
    screen name (case-insensitive) where one side lacks the id, so a v4 export (id and screen
    name) merges with a Lite export (id only) or a screen-name-only file. ``source_file`` lists
    the distinct files that contributed, joined with ``"; "``.
    """
    frames = [f.select(list(SCORES_SCHEMA)).cast(SCORES_SCHEMA) for f in frames]
    if not frames:
        return pl.DataFrame(schema=SCORES_SCHEMA)
    frame = pl.concat(frames)
    if frame.is_empty():
        return frame
    values = [pl.col(c).drop_nulls().first() for c in SCORES_SCHEMA if c != "source_file"]
    return (frame.with_columns(_merge_key(frame).alias("_key"))
            .group_by("_key", maintain_order=True)
            .agg(*values, pl.col("source_file").unique(maintain_order=True)
                 .str.join("; "))
            .select(list(SCORES_SCHEMA)).cast(SCORES_SCHEMA))
