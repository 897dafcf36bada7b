"""The publication plan of one OASIS run: every call the publisher will make, nothing called.

``plan_publication`` is pure and reproducible: the same run and config give the same plan, so
a resumed publish finds the same keys in its ledger.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import polars as pl

from botpipeline.transforms.sharkey.interactions import (plan_follows, plan_reactions,
                                                         plan_viral_renotes)
from botpipeline.transforms.sharkey.notes import plan_notes
from botpipeline.transforms.sharkey.personas import FALLBACK_NAMES, NAME_TEMPLATES
from botpipeline.transforms.sharkey.usernames import map_usernames

ADMIN = "admin"
MAX_NAME, MAX_DESCRIPTION = 50, 1500


@dataclass(frozen=True)
class PlanSettings:
    seed: int = 314159
    username_prefix: str = ""
    empty_text: str = "…"
    max_note_length: int = 3000
    reactions_per_account: int = 5
    viral_posts: int = 20
    renotes_per_post: int = 3


@dataclass
class Plan:
    accounts: pl.DataFrame   # user_id, username, display_name, description, persona, …
    notes: pl.DataFrame      # dataset notes and viral renotes, in posting order
    follows: pl.DataFrame    # follower_id, followee_id
    reactions: pl.DataFrame  # user_id, note_key, reaction
    quarantine: pl.DataFrame  # kind, post_id, user_id, reason

    def calls(self) -> Counter:
        """Calls per (owner, endpoint) a full publish makes (verification excluded)."""
        counts: Counter = Counter()
        counts[(ADMIN, "admin/accounts/create")] = self.accounts.height
        for user in self.accounts["user_id"]:
            counts[(user, "drive/files/create")] += 2
            counts[(user, "i/update")] += 1
        for frame, user_col, endpoint in ((self.notes, "user_id", "notes/create"),
                                          (self.follows, "follower_id", "following/create"),
                                          (self.reactions, "user_id",
                                           "notes/reactions/create")):
            for user, n in frame.group_by(user_col).len().iter_rows():
                counts[(user, endpoint)] += n
        return counts


def _display_name(user_id: str, persona: str | None) -> str:
    digest = hashlib.md5(user_id.encode()).hexdigest()
    names = NAME_TEMPLATES.get(persona or "", FALLBACK_NAMES)
    return f"{names[int(digest[:8], 16) % len(names)]}_{digest[:4]}"[:MAX_NAME]


def plan_accounts(personas: pl.DataFrame, prefix: str = "") -> pl.DataFrame:
    persona = pl.coalesce(pl.col("primary_label"), pl.lit("")) \
        if "primary_label" in personas.columns else pl.lit("")
    base = personas.select("user_id", "username", persona.alias("persona"),
                           pl.col("description") if "description" in personas.columns
                           else pl.lit(None, pl.String).alias("description"))
    names = map_usernames(base, prefix)
    return (base.drop("username").join(names, on="user_id")
            .with_columns(
                pl.struct("user_id", "persona").map_elements(
                    lambda r: _display_name(r["user_id"], r["persona"]),
                    return_dtype=pl.String).alias("display_name"),
                pl.when(pl.col("description").fill_null("").str.strip_chars() == "")
                .then(pl.lit("Simulated account (") + pl.col("persona") + ")")
                .otherwise(pl.col("description").str.slice(0, MAX_DESCRIPTION))
                .alias("description"))
            .with_columns(pl.col("user_id").cast(pl.Int64, strict=False).alias("_n"))
            .sort("_n", "user_id").drop("_n"))


def with_repost_roots(posts: pl.DataFrame) -> pl.DataFrame:
    """``original_post_id``: the post a repost root refers to. OASIS marks a repost or quote
    as a root whose ``thread_id`` names another post (as core_model.oasis_posts reads it); an
    explicit ``original_post_id`` column (OASIS's own post table) wins."""
    refers = pl.when(pl.col("parent_id").is_null() & (pl.col("thread_id") != pl.col("post_id"))
                     ).then(pl.col("thread_id")) if "thread_id" in posts.columns \
        else pl.lit(None, pl.String)
    explicit = pl.col("original_post_id") if "original_post_id" in posts.columns \
        else pl.lit(None, pl.String)
    return posts.with_columns(pl.coalesce(explicit, refers).alias("original_post_id"))


def plan_publication(posts: pl.DataFrame, personas: pl.DataFrame, follows: pl.DataFrame,
                     settings: PlanSettings = PlanSettings()) -> Plan:
    accounts = plan_accounts(personas, settings.username_prefix)
    known = accounts["user_id"].implode()
    strangers = posts.filter(~pl.col("user_id").is_in(known))
    posts = with_repost_roots(posts.filter(pl.col("user_id").is_in(known)))
    notes, note_quarantine = plan_notes(posts, max_length=settings.max_note_length,
                                        empty_text=settings.empty_text)
    renotes = plan_viral_renotes(notes, accounts, settings.viral_posts,
                                 settings.renotes_per_post, settings.seed)
    last = notes["order"].max()
    renote_rows = renotes.select(
        pl.col("renote_key").alias("note_key"), pl.lit(None, pl.String).alias("post_id"),
        pl.lit(0, pl.Int64).alias("part"), "user_id", pl.lit("renote").alias("kind"),
        pl.lit(None, pl.String).alias("text"), pl.lit("renote").alias("text_rule"),
        pl.lit(None, pl.String).alias("reply_to_key"), "renote_of_key",
        pl.lit(None, pl.Int64).alias("step"), pl.lit(None, pl.Int64).alias("effective_step"),
        pl.lit(None, pl.Int64).alias("depth"), pl.lit(None, pl.Int64).alias("source_line"),
        ((last if last is not None else 0) + 1 + pl.int_range(pl.len())).cast(pl.UInt32)
        .alias("order"), pl.lit("viral").alias("source"))
    notes = pl.concat([notes.with_columns(pl.col("part").cast(pl.Int64)), renote_rows],
                      how="vertical_relaxed")
    follow_edges, follow_quarantine = plan_follows(follows, accounts)
    reactions = plan_reactions(notes, accounts, settings.reactions_per_account, settings.seed)
    quarantine = pl.concat([
        note_quarantine, follow_quarantine,
        strangers.select("post_id", "user_id",
                         pl.lit("author is not a persona of the run").alias("reason"),
                         pl.lit("note").alias("kind"))], how="vertical_relaxed")
    return Plan(accounts, notes, follow_edges, reactions, quarantine)
