"""The analysts' view of a publish: the plan joined with the ledger (server ids, times)."""

from __future__ import annotations

import polars as pl

from botpipeline.transforms.sharkey.plan import Plan


def _ids(ledger: pl.DataFrame, kind: str, key: str, server: str) -> pl.DataFrame:
    return (ledger.filter(pl.col("kind") == kind)
            .select(pl.col("key").alias(key), pl.col("server_id").alias(server),
                    pl.col("recorded_at")))


def published_tables(plan: Plan, ledger: pl.DataFrame, server: str) -> dict[str, pl.DataFrame]:
    """``accounts, notes, follows, reactions``: one row per planned object; server ids are
    null where it is not (yet) published."""
    # A versioned profile (text that follows the scores) is recorded per version.
    profile_key = pl.col("user_id") + "#" + pl.col("profile_version") \
        if "profile_version" in plan.accounts.columns else pl.col("user_id")
    accounts = (plan.accounts
                .join(_ids(ledger, "account", "user_id", "server_user_id"), on="user_id",
                      how="left")
                .with_columns(profile_key.alias("_pk"))
                .join(_ids(ledger, "profile", "_pk", "_p").select(
                    "_pk", pl.col("recorded_at").alias("profile_updated_at")),
                      on="_pk", how="left").drop("_pk")
                .join(_ids(ledger, "avatar", "user_id", "avatar_file_id").drop("recorded_at"),
                      on="user_id", how="left")
                .join(_ids(ledger, "banner", "user_id", "banner_file_id").drop("recorded_at"),
                      on="user_id", how="left"))
    note_ids = _ids(ledger, "note", "note_key", "server_note_id")
    ref = note_ids.select("note_key", "server_note_id")
    users = accounts.select("user_id", "username", "server_user_id")
    notes = (plan.notes
             .join(note_ids, on="note_key", how="left")
             .join(ref.rename({"note_key": "reply_to_key", "server_note_id": "server_reply_id"}),
                   on="reply_to_key", how="left")
             .join(ref.rename({"note_key": "renote_of_key",
                               "server_note_id": "server_renote_id"}),
                   on="renote_of_key", how="left")
             .join(users, on="user_id", how="left")
             .sort("order"))
    follows = (plan.follows
               .with_columns((pl.col("follower_id") + "->" + pl.col("followee_id")).alias("_k"))
               .join(_ids(ledger, "follow", "_k", "server_followee_id"), on="_k", how="left")
               .drop("_k"))
    reactions = (plan.reactions
                 .with_columns((pl.col("user_id") + "|" + pl.col("note_key")).alias("_k"))
                 .join(_ids(ledger, "reaction", "_k", "server_note_id"), on="_k", how="left")
                 .drop("_k"))
    tables = {"accounts": accounts, "notes": notes, "follows": follows, "reactions": reactions}
    return {name: frame.with_columns(pl.lit(server).alias("server"))
            for name, frame in tables.items()}
