"""Follows from the run's edges, and the reactions and renotes the run does not contain.

Reactions and viral renotes are drawn, reproducibly from ``seed``, with weights from persona
affinity (personas.py). Sampling k items without replacement by weight uses the Gumbel top-k
trick: sort by ``log(w) + Gumbel noise`` and keep the first k, in one vectorized pass.
"""

from __future__ import annotations

import polars as pl

from botpipeline.transforms.sharkey.personas import VIRAL_PERSONAS, affinity_table, reaction_for

from botpipeline.lazy import lazy

np = lazy("numpy")


def plan_follows(follows: pl.DataFrame, accounts: pl.DataFrame
                 ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Valid follow edges, and the rest quarantined with a reason."""
    ids = accounts["user_id"]
    edges = follows.select("follower_id", "followee_id").with_row_index("edge")
    reason = (pl.when(pl.col("follower_id").is_null() | pl.col("followee_id").is_null())
              .then(pl.lit("follow edge with a missing id"))
              .when(~pl.col("follower_id").is_in(ids.implode()))
              .then(pl.lit("follower is not a persona of the run"))
              .when(~pl.col("followee_id").is_in(ids.implode()))
              .then(pl.lit("followee is not a persona of the run"))
              .when(pl.col("follower_id") == pl.col("followee_id"))
              .then(pl.lit("an account cannot follow itself"))
              .when(pl.int_range(pl.len()).over("follower_id", "followee_id") > 0)
              .then(pl.lit("duplicate follow edge")))
    edges = edges.with_columns(reason.alias("reason"))
    good = edges.filter(pl.col("reason").is_null()).select("follower_id", "followee_id")
    bad = edges.filter(pl.col("reason").is_not_null()).select(
        (pl.col("follower_id").fill_null("?") + "->" + pl.col("followee_id").fill_null("?"))
        .alias("post_id"), pl.col("follower_id").alias("user_id"), "reason",
        pl.lit("follow").alias("kind"))
    return good, bad


def _gumbel_top_k(pairs: pl.DataFrame, group: str, k: int, seed: int) -> pl.DataFrame:
    if pairs.height == 0 or k <= 0:
        return pairs.clear()
    noise = np.random.default_rng(seed).gumbel(size=pairs.height)
    return (pairs.with_columns((pl.col("weight").log() + pl.Series(noise)).alias("_key"))
            .sort(group, "_key", descending=[False, True])
            .group_by(group, maintain_order=True).head(k)
            .drop("_key"))


def _affinities(accounts: pl.DataFrame) -> pl.DataFrame:
    personas = accounts["persona"].fill_null("").unique().sort().to_list()
    return pl.DataFrame(affinity_table(personas), orient="row",
                        schema={"viewer_persona": pl.String, "author_persona": pl.String,
                                "weight": pl.Float64})


def plan_reactions(notes: pl.DataFrame, accounts: pl.DataFrame, per_account: int,
                   seed: int) -> pl.DataFrame:
    """``user_id, note_key, reaction, weight``: each account reacts to ``per_account`` notes
    of others, drawn by affinity to their authors."""
    people = accounts.select("user_id", pl.col("persona").fill_null(""))
    viewers = people.rename({"user_id": "viewer_id", "persona": "viewer_persona"})
    targets = (notes.filter((pl.col("part") == 0) & (pl.col("kind") != "renote"))
               .select("note_key", pl.col("user_id").alias("author_id"))
               .join(people.rename({"user_id": "author_id", "persona": "author_persona"}),
                     on="author_id"))
    pairs = (viewers.join(targets, how="cross")
             .filter(pl.col("viewer_id") != pl.col("author_id"))
             .join(_affinities(accounts), on=["viewer_persona", "author_persona"])
             .filter(pl.col("weight") > 0)
             .sort("viewer_id", "note_key"))
    chosen = _gumbel_top_k(pairs, "viewer_id", per_account, seed)
    return chosen.select(
        pl.col("viewer_id").alias("user_id"), "note_key",
        pl.col("weight").map_elements(reaction_for, return_dtype=pl.String).alias("reaction"),
        "weight")


def plan_viral_renotes(notes: pl.DataFrame, accounts: pl.DataFrame, posts: int,
                       per_post: int, seed: int) -> pl.DataFrame:
    """Renotes of the most replied-to roots by viral personas, by accounts drawn by affinity.

    ``user_id, note_key (the renote), renote_of_key, weight``."""
    people = accounts.select("user_id", pl.col("persona").fill_null(""))
    replies = (notes.filter(pl.col("kind") == "reply").group_by("reply_to_key").len()
               .rename({"reply_to_key": "note_key", "len": "replies"}))
    roots = (notes.filter((pl.col("kind") == "post") & (pl.col("part") == 0))
             .select("note_key", pl.col("user_id").alias("author_id"), "order")
             .join(people.rename({"user_id": "author_id", "persona": "author_persona"}),
                   on="author_id")
             .filter(pl.col("author_persona").is_in(list(VIRAL_PERSONAS)))
             .join(replies, on="note_key", how="left")
             .with_columns(pl.col("replies").fill_null(0))
             .sort(["replies", "order"], descending=[True, False])
             .head(posts))
    pairs = (roots.join(people.rename({"user_id": "viewer_id", "persona": "viewer_persona"}),
                        how="cross")
             .filter(pl.col("viewer_id") != pl.col("author_id"))
             .join(_affinities(accounts), on=["viewer_persona", "author_persona"])
             .sort("note_key", "viewer_id"))
    chosen = _gumbel_top_k(pairs, "note_key", per_post, seed + 1)
    return chosen.select(
        pl.col("viewer_id").alias("user_id"),
        ("renote:" + pl.col("note_key") + ":" + pl.col("viewer_id")).alias("renote_key"),
        pl.col("note_key").alias("renote_of_key"), "order", "weight")
