"""The notes of a run in the order they can be posted.

Order. A reply (or a quote, or a repost) cannot exist before the post it points at, but 183 of
the 882 replies in the real OASIS run sit at an earlier simulation step than their parent. So a
note's *effective step* is the latest step on its path to the thread root, and notes are posted
by (effective step, depth in the thread, line in the file). Along every reply edge that key
grows, so it is a topological order: each account posts its notes in that order and a reply
never waits for anything posted after it.

Text rules (``text_rule``):
- ``as_is``;
- ``empty_placeholder``: a blank text (Sharkey refuses blank notes) becomes ``empty_text``;
- ``renote``: a repost (``original_post_id`` and no text) is a pure renote, no text;
- ``split``: a text over ``max_length`` is cut at whitespace into parts of at most
  ``max_length`` characters; part 0 is the note that replies and reactions attach to, part k
  replies to part k-1 as the same account. Joining the parts gives the text back exactly.
"""

from __future__ import annotations

import polars as pl

ANCHOR = "_anchor"


def split_text(text: str, max_length: int) -> list[str]:
    """Parts of at most ``max_length`` characters, cut after whitespace where possible."""
    parts, rest = [], text
    while len(rest) > max_length:
        cut = max(rest.rfind(" ", 0, max_length), rest.rfind("\n", 0, max_length))
        cut = cut + 1 if cut >= max_length // 2 else max_length
        parts.append(rest[:cut])
        rest = rest[cut:]
    return parts + [rest]


def thread_order(posts: pl.DataFrame) -> pl.DataFrame:
    """``post_id, effective_step, depth, in_cycle`` by pointer doubling over the anchors
    (parent, else reposted post): log2(depth) joins, whatever the number of posts."""
    nodes = posts.select("post_id", pl.col(ANCHOR).alias("jump"),
                         pl.col("step").alias("best"),
                         pl.col(ANCHOR).is_not_null().cast(pl.Int64).alias("depth"))
    lookup = nodes.select(pl.col("post_id").alias("jump"), pl.col("jump").alias("jump2"),
                          pl.col("best").alias("best2"), pl.col("depth").alias("depth2"))
    rounds = max(1, posts.height.bit_length() + 1)
    for _ in range(rounds):
        merged = nodes.join(lookup, on="jump", how="left")
        nodes = merged.select(
            "post_id", pl.col("jump2").alias("jump"),
            pl.max_horizontal("best", pl.col("best2").fill_null(pl.col("best"))).alias("best"),
            (pl.col("depth") + pl.col("depth2").fill_null(0)).alias("depth"))
        if nodes["jump"].null_count() == nodes.height:
            break
        lookup = nodes.select(pl.col("post_id").alias("jump"), pl.col("jump").alias("jump2"),
                              pl.col("best").alias("best2"), pl.col("depth").alias("depth2"))
    # After 2^rounds > n hops a chain that still points somewhere is a cycle.
    return nodes.select("post_id", pl.col("best").alias("effective_step"), "depth",
                        pl.col("jump").is_not_null().alias("in_cycle"))


def plan_notes(posts: pl.DataFrame, *, max_length: int = 3000, empty_text: str = "…"
               ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Notes (one row per note to create) and quarantine rows (kept, but changed)."""
    if "original_post_id" not in posts.columns:
        posts = posts.with_columns(pl.lit(None, pl.String).alias("original_post_id"))
    known = posts["post_id"]
    p = posts.select(
        "post_id", "user_id", "step", "source_line", "text",
        pl.col("parent_id").alias("dataset_parent_id"),
        pl.col("original_post_id").alias("dataset_original_id"))
    missing_parent = p["dataset_parent_id"].is_not_null() & ~p["dataset_parent_id"].is_in(known.implode())
    missing_original = p["dataset_original_id"].is_not_null() & \
        ~p["dataset_original_id"].is_in(known.implode())
    p = p.with_columns(
        pl.Series("_missing_parent", missing_parent), pl.Series("_missing_orig", missing_original),
        pl.col("step").fill_null(0))
    p = p.with_columns(
        pl.when(pl.col("_missing_parent")).then(None).otherwise(pl.col("dataset_parent_id"))
        .alias("parent_id"),
        pl.when(pl.col("_missing_orig")).then(None).otherwise(pl.col("dataset_original_id"))
        .alias("original_post_id"))
    p = p.with_columns(pl.coalesce("parent_id", "original_post_id").alias(ANCHOR))
    order = thread_order(p)
    p = p.join(order, on="post_id", how="left")
    p = p.with_columns(
        pl.when(pl.col("in_cycle")).then(None).otherwise(pl.col("parent_id")).alias("parent_id"),
        pl.when(pl.col("in_cycle")).then(None).otherwise(pl.col("original_post_id"))
        .alias("original_post_id"))

    blank = pl.col("text").fill_null("").str.strip_chars() == ""
    is_renote = pl.col("original_post_id").is_not_null() & blank
    kind = (pl.when(is_renote).then(pl.lit("renote"))
            .when(pl.col("original_post_id").is_not_null()).then(pl.lit("quote"))
            .when(pl.col("parent_id").is_not_null()).then(pl.lit("reply"))
            .otherwise(pl.lit("post")))
    # Sharkey refuses replies to, and renotes of, a pure renote: point them at the post the
    # renote reposts (what its client does when you renote a renote).
    p = p.with_columns(kind.alias("kind"))
    pure = p.filter(pl.col("kind") == "renote").select("post_id", "original_post_id")
    for column, flag in (("parent_id", "_via_renote_parent"),
                         ("original_post_id", "_via_renote_orig")):
        p = (p.join(pure.rename({"post_id": column, "original_post_id": "_target"}),
                    on=column, how="left")
             .with_columns(pl.col("_target").is_not_null().alias(flag),
                           pl.coalesce("_target", column).alias(column))
             .drop("_target"))
    too_long = pl.col("text").str.len_chars() > max_length
    p = p.with_columns(
        pl.when(is_renote).then(pl.lit("renote")).when(blank).then(pl.lit("empty_placeholder"))
        .when(too_long).then(pl.lit("split")).otherwise(pl.lit("as_is")).alias("text_rule"),
        pl.when(is_renote).then(None).when(blank).then(pl.lit(empty_text))
        .otherwise(pl.col("text")).alias("_text"))
    p = p.with_columns(
        pl.when(pl.col("text_rule") == "split")
        .then(pl.col("_text").map_elements(lambda t: split_text(t, max_length),
                                           return_dtype=pl.List(pl.String)))
        .otherwise(pl.concat_list(pl.col("_text"))).alias("_parts"))
    notes = (p.sort("effective_step", "depth", "source_line")
             .with_row_index("seq")
             .explode("_parts")
             .with_columns(pl.int_range(pl.len()).over("post_id").alias("part"))
             .with_columns(
                 pl.when(pl.col("part") == 0).then(pl.col("post_id"))
                 .otherwise(pl.col("post_id") + "#" + pl.col("part").cast(pl.String))
                 .alias("note_key"),
                 pl.when(pl.col("part") == 0).then(pl.col("parent_id"))
                 .otherwise(pl.col("post_id") + pl.when(pl.col("part") > 1)
                            .then("#" + (pl.col("part") - 1).cast(pl.String))
                            .otherwise(pl.lit("")))
                 .alias("reply_to_key"),
                 pl.when(pl.col("part") == 0).then(pl.col("original_post_id"))
                 .alias("renote_of_key"),
                 pl.col("_parts").alias("text"),
                 pl.lit("dataset").alias("source"))
             .with_row_index("order")
             .select("note_key", "post_id", "part", "user_id", "kind", "text", "text_rule",
                     "reply_to_key", "renote_of_key", "step", "effective_step", "depth",
                     "source_line", "order", "source"))

    reasons = {"_missing_parent": "parent not in the run: posted as a root",
               "_missing_orig": "reposted post not in the run: posted without the repost",
               "in_cycle": "reply chain loops: posted as a root",
               "_via_renote_parent": "replies to a pure renote: attached to the reposted post",
               "_via_renote_orig": "reposts a pure renote: points at the reposted post"}
    quarantine = pl.concat([
        p.filter(pl.col(flag)).select("post_id", "user_id", pl.lit(reason).alias("reason"))
        for flag, reason in reasons.items()])
    return notes, quarantine.with_columns(pl.lit("note").alias("kind"))
