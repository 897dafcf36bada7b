"""Scored real conversations as a publication plan for a Sharkey sandbox, pseudonymously.

The lineage the project is about, on a server people can browse: threads of a collection date
(from ``conversations.posts``) with the detectors' verdicts on every participant.

- **Which threads** (``ThreadSettings.select``): ``flagged`` (threads with a post by an account
  a selected detector flags, most flagged participants first), ``most_replied``, or ``ids``
  (root ids); at most ``max_threads``, optionally only some ``platforms``.
- **Pseudonyms**: an account becomes ``<prefix><12 hex of sha256(salt, platform, id)>``; the
  salt never leaves this machine, so the sandbox name says nothing about the real one, and the
  mapping lives only in the lake (``sharkey.thread_accounts``). Display names are the
  pseudonym; real profile texts are not copied.
- **Text**: ``@mentions`` of known accounts become their pseudonyms, of unknown ones a
  pseudonym of the name; known participants' names elsewhere in the text are replaced as
  whole words; links become ``[link]`` unless ``keep_links``.
- **Verdicts on the server**: ``isBot`` for accounts flagged by the detectors in ``bot_flag_by``
  (default the learned model and the rules), and a profile text with the date's 13-signal total,
  rule verdict and reasons, learned probability and model version, and who flagged it. Its
  ``profile_version`` (a hash of text and flag) makes the publisher update a profile again when
  the scores change, and never the notes.
- Replies hang under their parents, quotes and reposts point at their targets when those are
  published too (otherwise the post stands alone and the plan's quarantine says why), in the
  threads' time order (transforms/sharkey/notes.py).

The rewriting loops over the published posts in Python: at most a few thousand per date, far
below what the server's rate limits let through in the same time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import polars as pl

from botpipeline.transforms.sharkey.notes import plan_notes
from botpipeline.transforms.sharkey.plan import MAX_DESCRIPTION, Plan

DETECTORS = ("score", "rules", "model")
SELECTIONS = ("flagged", "most_replied", "ids")
MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_][A-Za-z0-9_.-]*[A-Za-z0-9_]|[A-Za-z0-9_])")
LINK = re.compile(r"https?://\S+|www\.\S+")

# Each participant's verdicts on the date; accounts without a score row keep nulls.
VERDICTS_SQL = """
    SELECT b.platform, b.account_id, b.total_score, b.flagged AS flagged_by_score,
           b.significant_signals, r.is_likely_bot AS flagged_by_rules, r.reasons AS rule_reasons,
           {probability}
    FROM scores.bot_scores b
    JOIN scores.rule_filter r USING (collection_date, platform, account_id)
    {join}
    WHERE b.collection_date = ?"""


@dataclass(frozen=True)
class ThreadSettings:
    select: str = "flagged"
    max_threads: int = 10
    conversation_ids: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    flagged_by: tuple[str, ...] = DETECTORS     # what makes a thread "flagged"
    bot_flag_by: tuple[str, ...] = ("model", "rules")  # what sets isBot on the server
    username_prefix: str = "u_"
    keep_links: bool = False
    empty_text: str = "…"
    max_note_length: int = 3000
    salt: str = field(default="", repr=False)

    def __post_init__(self):
        if self.select not in SELECTIONS:
            raise ValueError(f"select must be one of {SELECTIONS}, not {self.select!r}")
        for name in ("flagged_by", "bot_flag_by"):
            unknown = set(getattr(self, name)) - set(DETECTORS)
            if unknown:
                raise ValueError(f"{name}: unknown detectors {sorted(unknown)}; "
                                 f"choose from {DETECTORS}")
        if self.select == "ids" and not self.conversation_ids:
            raise ValueError("select 'ids' needs conversation_ids")
        if not self.salt:
            raise ValueError("a pseudonym salt is required")
        if not re.fullmatch(r"\w{0,6}", self.username_prefix, re.ASCII):
            raise ValueError("username_prefix: at most 6 characters of [A-Za-z0-9_]")


def pseudonym(salt: str, platform: str, key: str, prefix: str) -> str:
    digest = hashlib.sha256(f"{salt}\x1f{platform}\x1f{key}".encode()).hexdigest()
    return f"{prefix}{digest[:12]}"


def flagged_expr(detectors: tuple[str, ...]) -> pl.Expr:
    column = {"score": "flagged_by_score", "rules": "flagged_by_rules",
              "model": "flagged_by_model"}
    return pl.any_horizontal([pl.col(column[d]).fill_null(False) for d in detectors]) \
        if detectors else pl.lit(False)


def select_threads(posts: pl.DataFrame, threads: pl.DataFrame, verdicts: pl.DataFrame,
                   settings: ThreadSettings) -> pl.DataFrame:
    """``root_id`` of the chosen threads with why: ``flagged_participants``, ``posts``,
    ``replies``, in the order chosen."""
    scoped = posts if not settings.platforms else posts.filter(
        pl.col("platform").is_in(list(settings.platforms)))
    flagged = verdicts.filter(flagged_expr(settings.flagged_by)).select(
        "platform", pl.col("account_id").alias("author_id"))
    per_thread = (scoped.join(flagged.with_columns(pl.lit(True).alias("_flagged")),
                              on=["platform", "author_id"], how="left")
                  .group_by("root_id")
                  .agg(pl.col("author_id").filter(pl.col("_flagged")).n_unique()
                       .alias("flagged_participants")))
    ranked = per_thread.join(threads.select("root_id", "posts", "replies"), on="root_id",
                             how="left").fill_null(0)
    if settings.select == "ids":
        wanted = pl.DataFrame({"root_id": list(settings.conversation_ids)})
        missing = wanted.join(ranked, on="root_id", how="anti")
        if missing.height:
            raise ValueError(f"{missing.height} conversation ids are not threads of this "
                             f"date: {missing['root_id'].to_list()[:5]}")
        return wanted.join(ranked, on="root_id", how="left")
    if settings.select == "flagged":
        ranked = ranked.filter(pl.col("flagged_participants") > 0).sort(
            ["flagged_participants", "replies", "root_id"], descending=[True, True, False])
    else:
        ranked = ranked.sort(["replies", "root_id"], descending=[True, False])
    return ranked.head(settings.max_threads)


def describe(row: dict, date: str) -> str:
    """The profile text: what the detectors said about this account on ``date``."""
    parts = [f"Pseudonymous copy of a public {row['platform']} account, for research. "
             f"Detector verdicts on {date}:"]
    if row.get("total_score") is not None:
        signals = ", ".join(row.get("significant_signals") or []) or "none"
        parts.append(f"13-signal score {row['total_score']:.1f} "
                     f"({'flagged' if row['flagged_by_score'] else 'not flagged'}; "
                     f"signals: {signals}).")
    else:
        parts.append("13-signal score: not scored.")
    if row.get("flagged_by_rules") is not None:
        reasons = "; ".join(row.get("rule_reasons") or [])
        parts.append(f"Rule filter: {'likely bot' if row['flagged_by_rules'] else 'not a bot'}"
                     + (f" ({reasons})." if reasons else "."))
    if row.get("bot_probability") is not None:
        parts.append(f"Learned model {row['model_version']}: p(bot) = "
                     f"{row['bot_probability']:.2f}"
                     f" ({'flagged' if row['flagged_by_model'] else 'not flagged'}).")
    else:
        parts.append("Learned model: no score.")
    flagged = [d for d, c in (("score", "flagged_by_score"), ("rules", "flagged_by_rules"),
                              ("model", "flagged_by_model")) if row.get(c)]
    parts.append(f"Flagged by: {', '.join(flagged) if flagged else 'none'}.")
    return " ".join(parts)[:MAX_DESCRIPTION]


def rewrite(text: str | None, platform: str, names: dict[tuple[str, str], str],
            settings: ThreadSettings, words: re.Pattern | None,
            participants: dict[str, str]) -> str | None:
    """Mentions to pseudonyms, known names to pseudonyms, links to ``[link]``."""
    if text is None:
        return None

    def mention(match: re.Match) -> str:
        name = match.group(1).lower()
        return "@" + names.get((platform, name)) if (platform, name) in names else \
            "@" + pseudonym(settings.salt, platform, "@" + name, settings.username_prefix)

    text = MENTION.sub(mention, text)
    if words is not None:
        text = words.sub(lambda m: participants[m.group(0).lower()], text)
    return text if settings.keep_links else LINK.sub("[link]", text)


def plan_threads(posts: pl.DataFrame, chosen: pl.DataFrame, accounts: pl.DataFrame,
                 verdicts: pl.DataFrame, date: str, settings: ThreadSettings
                 ) -> tuple[Plan, pl.DataFrame]:
    """The publication plan of the chosen threads, and the pseudonym mapping
    (``platform, account_id, real_username, username``, verdicts) for the lake only.

    ``posts``: core post columns plus ``root_id``; ``accounts``: core.accounts of the date;
    ``verdicts``: VERDICTS_SQL's columns."""
    selected = posts.join(chosen.select("root_id"), on="root_id", how="semi")
    keys = selected.select("platform", pl.col("post_id").alias("_id"))
    target = pl.coalesce("reposted_id", "quoted_id")
    # A repost counts only where its target is published too (a renote needs a note).
    selected = selected.filter((pl.col("kind") != "repost") | pl.struct(
        "platform", target.alias("_id")).is_in(keys.to_struct().implode()))
    authors = (selected.select("platform", pl.col("author_id").alias("account_id"))
               .unique()
               .join(accounts.select("platform", "account_id", "username")
                     .unique(["platform", "account_id"]), on=["platform", "account_id"],
                     how="left")
               .join(verdicts, on=["platform", "account_id"], how="left")
               .sort("platform", "account_id"))
    names_of = [pseudonym(settings.salt, p, a, settings.username_prefix)
                for p, a in authors.select("platform", "account_id").iter_rows()]
    mapping = authors.rename({"username": "real_username"}).with_columns(
        pl.Series("username", names_of, dtype=pl.String),
        flagged_expr(settings.bot_flag_by).alias("is_bot"))
    descriptions = [describe(row, date) for row in mapping.iter_rows(named=True)]
    mapping = mapping.with_columns(pl.Series("description", descriptions, dtype=pl.String))
    mapping = mapping.with_columns(
        (pl.col("platform") + ":" + pl.col("account_id")).alias("user_id"),
        pl.concat_str(pl.col("description"), pl.col("is_bot").cast(pl.String))
        .map_batches(lambda s: pl.Series([hashlib.md5(v.encode()).hexdigest()[:10]
                                          for v in s], dtype=pl.String),
                     return_dtype=pl.String).alias("profile_version"))

    # Every known name of the date (participants first) maps to a pseudonym; participants'
    # names are also replaced where they stand as plain words.
    known = accounts.filter(pl.col("username").is_not_null()).select(
        "platform", "account_id", "username").unique(["platform", "username"])
    names = {(p, u.lower()): pseudonym(settings.salt, p, a, settings.username_prefix)
             for p, a, u in known.iter_rows()}
    participants = {u.lower(): pseudo for u, pseudo in
                    mapping.select("real_username", "username").iter_rows()
                    if u is not None and len(u) >= 3}
    words = re.compile(r"(?<![\w@])(" + "|".join(
        re.escape(u) for u in sorted(participants, key=len, reverse=True))
        + r")(?!\w)", re.IGNORECASE) if participants else None
    texts = [rewrite(t, p, names, settings, words, participants) if k != "repost" else None
             for t, p, k in selected.select("text", "platform", "kind").iter_rows()]
    ordered = selected.sort("created_at", "post_id")
    pid = pl.col("platform") + ":"
    frame = selected.with_columns(pl.Series("text", texts, dtype=pl.String)).join(
        ordered.select("platform", "post_id").with_row_index("source_line"),
        on=["platform", "post_id"]).select(
        (pid + pl.col("post_id")).alias("post_id"),
        (pid + pl.col("author_id")).alias("user_id"),
        pl.when(pl.col("parent_id").is_not_null()).then(pid + pl.col("parent_id"))
        .alias("parent_id"),
        pl.when(target.is_not_null() & pl.col("kind").is_in(["repost", "quote"]))
        .then(pid + target).alias("original_post_id"),
        pl.col("source_line").cast(pl.Int64).alias("step"),
        pl.col("source_line").cast(pl.Int64), "text")
    notes, quarantine = plan_notes(frame, max_length=settings.max_note_length,
                                   empty_text=settings.empty_text)
    notes = notes.with_columns(pl.col("part").cast(pl.Int64))
    plan_accounts = mapping.select(
        "user_id", "username", pl.col("username").alias("display_name"), "description",
        pl.col("platform").alias("persona"), "is_bot", "profile_version",
        pl.lit("pseudonym").alias("username_rule"))
    empty = {"follows": pl.DataFrame(schema={"follower_id": pl.String,
                                             "followee_id": pl.String}),
             "reactions": pl.DataFrame(schema={"user_id": pl.String, "note_key": pl.String,
                                               "reaction": pl.String})}
    plan = Plan(plan_accounts, notes, empty["follows"], empty["reactions"], quarantine)
    return plan, mapping.drop("description")
