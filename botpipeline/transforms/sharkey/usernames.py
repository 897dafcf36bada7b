"""Dataset usernames → Sharkey usernames (``^\\w{1,20}$``, ASCII, unique case-insensitively).

The rule, applied in order (the ``username_rule`` column says which step changed a name):
1. ``prefix`` + the persona's username; a missing name becomes ``user_<user_id>`` (generated);
2. every character outside ``[A-Za-z0-9_]`` becomes ``_`` (replaced_characters);
3. a name over 20 characters keeps its first 13, then ``_`` and 6 hex digits of the md5 of the
   full step-2 name (shortened), so distinct long names stay distinct;
4. a name equal (ignoring case) to an earlier one gets the same 13 + ``_`` + md5 form, hashed
   with its user id (deduplicated).
"""

from __future__ import annotations

import hashlib

import polars as pl

MAX_LENGTH = 20
KEEP = 13


def _md5_6(values: pl.Series) -> pl.Series:
    return pl.Series([hashlib.md5(v.encode()).hexdigest()[:6] for v in values],
                     dtype=pl.String)


def map_usernames(personas: pl.DataFrame, prefix: str = "") -> pl.DataFrame:
    """``user_id, dataset_username, username, username_rule`` for every persona row."""
    frame = personas.select("user_id", pl.col("username").alias("dataset_username"))
    name = pl.col("dataset_username")
    generated = name.is_null() | (name.str.strip_chars() == "")
    step1 = pl.when(generated).then(pl.lit(prefix + "user_") + pl.col("user_id")) \
        .otherwise(pl.lit(prefix) + name)
    frame = frame.with_columns(step1.alias("_s1"), generated.alias("_generated"))
    frame = frame.with_columns(pl.col("_s1").str.replace_all(r"[^A-Za-z0-9_]", "_").alias("_s2"))
    hashed = pl.col("_s2").str.slice(0, KEEP) + "_" + \
        pl.col("_s2").map_batches(_md5_6, return_dtype=pl.String)
    too_long = pl.col("_s2").str.len_chars() > MAX_LENGTH
    frame = frame.with_columns(pl.when(too_long).then(hashed).otherwise(pl.col("_s2"))
                               .alias("username"))
    duplicate = pl.int_range(pl.len()).over(pl.col("username").str.to_lowercase()) > 0
    dedup = pl.col("_s2").str.slice(0, KEEP) + "_" + \
        (pl.col("_s2") + "#" + pl.col("user_id")).map_batches(_md5_6, return_dtype=pl.String)
    frame = frame.with_columns(
        pl.when(duplicate).then(dedup).otherwise(pl.col("username")).alias("username"),
        pl.when(duplicate).then(pl.lit("deduplicated"))
        .when(too_long).then(pl.lit("shortened"))
        .when(pl.col("_s1") != pl.col("_s2")).then(pl.lit("replaced_characters"))
        .when(pl.col("_generated")).then(pl.lit("generated"))
        .otherwise(pl.lit("as_is")).alias("username_rule"))
    clashes = frame.filter(pl.col("username").str.to_lowercase().is_duplicated())
    if clashes.height:
        raise ValueError(f"username mapping left {clashes.height} clashing names: "
                         f"{clashes['username'].to_list()[:5]}")
    return frame.select("user_id", "dataset_username", "username", "username_rule")
