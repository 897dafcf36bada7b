"""sharkey/threads: a date's scored conversations published to the sandbox, pseudonymously.

The end of the lineage raw/tweets → core → conversations → features → scores: the threads
chosen by config (those with flagged accounts by default) go to the server through the same
publisher, ledger and kill-safety as the OASIS runs, with every participant under a salted
pseudonym, mentions and names in the text rewritten, links stripped, notes local-only, and the
detectors' verdicts on each profile (``isBot``, and the scores in its text). Accounts are shared
by all dates (one ledger per server: ``<data>/sharkey/<server>/threads/ledger.duckdb``); a re-run
after new scores updates the profiles and creates no note twice. The mapping from real accounts
to pseudonyms is kept only in the lake (``sharkey.thread_accounts``); the salt comes from
$SHARKEY_PSEUDONYM_SALT, else a secret file ``<data>/sharkey/pseudonym_salt`` made on first use.
"""

import os
import re
import secrets
from pathlib import Path

import dagster as dg
import polars as pl

from botpipeline.clients.sharkey.client import SharkeyClient
from botpipeline.clients.sharkey.publisher import Publisher
from botpipeline.clients.sharkey.tokens import TokenStore
from botpipeline.clients.sharkey.verify import check_threading, server_counts
from botpipeline.defs.metadata import markdown_preview
from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.resources import Warehouse
from botpipeline.defs.sharkey.publish import ledger_path, raise_if_incomplete
from botpipeline.defs.sharkey.resources import SharkeyResource
from botpipeline.storage.sharkey_ledger import Ledger
from botpipeline.transforms.sharkey.published import published_tables
from botpipeline.transforms.sharkey.threads import (VERDICTS_SQL, ThreadSettings,
                                                     plan_threads, select_threads)

THREADS = dg.AssetKey(["sharkey", "threads"])
LEDGER_RUN = "threads"
PARTS = {"accounts", "profiles", "notes"}
UPSTREAM = [dg.AssetKey(["conversations", "posts"]), dg.AssetKey(["conversations", "threads"]),
            dg.AssetKey(["scores", "bot_scores"]), dg.AssetKey(["scores", "rule_filter"]),
            dg.AssetKey(["scores", "bot_probability"])]
COUNTS, VERDICTS, PSEUDONYMOUS, THREADING = (
    "notes_count_matches_ledger", "profiles_show_the_verdicts", "no_real_names_in_notes",
    "threading_matches_conversations")


class ThreadPublishConfig(dg.Config):
    select: str = "flagged"
    """flagged: threads with a post by a flagged account (most flagged participants first);
    most_replied; ids: the root ids in conversation_ids."""
    max_threads: int = 10
    conversation_ids: list[str] = []
    platforms: list[str] = []
    """Only threads of these core platforms; empty: all."""
    flagged_by: list[str] = ["score", "rules", "model"]
    """Detectors whose flag makes a thread 'flagged'."""
    bot_flag_by: list[str] = ["model", "rules"]
    """Detectors whose flag sets isBot on the account."""
    username_prefix: str = "u_"
    keep_links: bool = False
    """Off: links in the text become [link] (a link can lead back to the real post)."""
    visibility: str = "public"
    local_only: bool = True
    """Notes stay on the sandbox instance (not federated)."""
    workers: int = 16
    create_workers: int = 8
    dry_run: bool = False
    """Choose and plan the threads, write the lake tables, call nothing."""
    verify_sample: int = 20

    def settings(self, salt: str) -> ThreadSettings:
        return ThreadSettings(
            select=self.select, max_threads=self.max_threads,
            conversation_ids=tuple(self.conversation_ids), platforms=tuple(self.platforms),
            flagged_by=tuple(self.flagged_by), bot_flag_by=tuple(self.bot_flag_by),
            username_prefix=self.username_prefix, keep_links=self.keep_links, salt=salt)


def pseudonym_salt(data_path: Path) -> str:
    """$SHARKEY_PSEUDONYM_SALT, else a random secret kept in a file only its owner reads."""
    if os.environ.get("SHARKEY_PSEUDONYM_SALT"):
        return os.environ["SHARKEY_PSEUDONYM_SALT"]
    path = data_path / "sharkey" / "pseudonym_salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def read_inputs(con, date: str, tables: set[str]) -> dict[str, pl.DataFrame]:
    learned = "scores.bot_probability" in tables
    verdicts = VERDICTS_SQL.format(
        probability="p.bot_probability, coalesce(p.flagged, false) AS flagged_by_model, "
                    "p.model_version" if learned else
                    "NULL::DOUBLE AS bot_probability, NULL::BOOLEAN AS flagged_by_model, "
                    "NULL::VARCHAR AS model_version",
        join="LEFT JOIN scores.bot_probability p USING (collection_date, platform, account_id)"
             if learned else "")
    return {
        "posts": con.sql("""
            SELECT p.platform, p.post_id, p.author_id, p.author_username, p.kind, p.parent_id,
                   p.reposted_id, p.quoted_id, p.created_at, p.text, c.root_id
            FROM core.posts p JOIN conversations.posts c USING (collection_date, post_id)
            WHERE p.collection_date = ?""", params=[date]).pl(),
        "threads": con.sql("SELECT root_id, posts, replies FROM conversations.threads "
                           "WHERE collection_date = ?", params=[date]).pl(),
        "accounts": con.sql("SELECT platform, account_id, username FROM core.accounts "
                            "WHERE collection_date = ?", params=[date]).pl(),
        "verdicts": con.sql(verdicts, params=[date]).pl(),
    }


@dg.asset(
    key=THREADS, group_name="sharkey", partitions_def=daily_partitions, deps=UPSTREAM,
    kinds={"duckdb"}, description=__doc__,
    check_specs=[
        dg.AssetCheckSpec(COUNTS, asset=THREADS, description="Each published account's "
                          "notesCount on the server equals its notes in the ledger (all "
                          "dates)."),
        dg.AssetCheckSpec(VERDICTS, asset=THREADS, description="Each account's isBot and "
                          "profile text on the server are the date's verdicts."),
        dg.AssetCheckSpec(PSEUDONYMOUS, asset=THREADS, description="No participant's real "
                          "username appears in a published note or profile."),
        dg.AssetCheckSpec(THREADING, asset=THREADS, description="Sampled notes read back have "
                          "the planned author, parent, renote target and text."),
    ])
def sharkey_threads(context: dg.AssetExecutionContext, config: ThreadPublishConfig,
                    warehouse: Warehouse, sharkey: SharkeyResource):
    date = context.partition_key
    settings = config.settings(pseudonym_salt(warehouse.data_path))
    with warehouse.get_connection() as con:
        inputs = read_inputs(con, date, {t.qualified for t in warehouse.lake.tables()})
    chosen = select_threads(inputs["posts"], inputs["threads"], inputs["verdicts"], settings)
    plan, mapping = plan_threads(inputs["posts"], chosen, inputs["accounts"],
                                 inputs["verdicts"], date, settings)
    context.log.info(f"{chosen.height} threads chosen ({config.select}): {plan.notes.height} "
                     f"notes by {plan.accounts.height} accounts, "
                     f"{int(plan.accounts['is_bot'].sum())} marked as bots")
    described = {"threads": markdown_preview(chosen),
                 "accounts": plan.accounts.height,
                 "accounts_marked_bot": int(plan.accounts["is_bot"].sum()),
                 "notes_by_kind": dict(plan.notes.group_by("kind").len().iter_rows()),
                 "quarantined": plan.quarantine.height}
    if config.dry_run or plan.accounts.height == 0:
        _write(context, warehouse, date, mapping, None, plan)
        warehouse.refresh_catalog(context.log)
        yield dg.MaterializeResult(asset_key=THREADS, metadata={
            **described, "dagster/row_count": 0, "dry_run": config.dry_run})
        for check in (COUNTS, VERDICTS, PSEUDONYMOUS, THREADING):
            yield dg.AssetCheckResult(check_name=check, asset_key=THREADS, passed=True,
                                      metadata={"checked": 0})
        return
    client, tokens = sharkey.client(), sharkey.tokens()
    ledger = Ledger(ledger_path(warehouse, client.server, LEDGER_RUN), client.server,
                    LEDGER_RUN)
    try:
        report = Publisher(plan, client, ledger, tokens, visibility=config.visibility,
                           local_only=config.local_only, create_workers=config.create_workers,
                           logger=context.log).publish(PARTS, workers=config.workers)
        ledger_rows = ledger.frame("SELECT * FROM sharkey.ledger")
        tables = published_tables(plan, ledger_rows, client.server)
        _write(context, warehouse, date, mapping, tables, plan)
        warehouse.refresh_catalog(context.log)
        published = tables["notes"].filter(pl.col("server_note_id").is_not_null()).height
        yield dg.MaterializeResult(asset_key=THREADS, metadata={
            **described, "dagster/row_count": published, "publish": report.summary(),
            "wall_seconds": round(report.outcome.seconds, 2),
            "lower_bound_seconds": round(report.lower_bound["seconds"], 2),
            "refused_429": dict(report.rate_limited),
            "tokens_recovered_by_signin": report.signins})
        yield from _checks(client, tokens, plan, tables, ledger_rows, mapping, config)
        raise_if_incomplete(report)
    finally:
        ledger.close()
        client.close()


def _write(context: dg.AssetExecutionContext, warehouse: Warehouse, date: str,
           mapping: pl.DataFrame, tables: dict | None, plan) -> None:
    day = pl.lit(date).str.to_date().alias("collection_date")
    frames = {"thread_accounts": mapping,
              "thread_notes": tables["notes"] if tables else plan.notes,
              "thread_quarantine": plan.quarantine}
    with warehouse.transaction(context) as lake:  # the three tables, all or none
        for table, frame in frames.items():
            lake.write("sharkey", table, date, frame.with_columns(day))


def _checks(client: SharkeyClient, tokens: TokenStore, plan, tables: dict,
            ledger_rows: pl.DataFrame, mapping: pl.DataFrame, config: ThreadPublishConfig):
    accounts = tables["accounts"].filter(pl.col("server_user_id").is_not_null())
    counts = server_counts(client, tokens, accounts)
    in_ledger = (ledger_rows.filter(pl.col("kind") == "note").group_by("user_id")
                 .len("ledger_notes"))
    compared = counts.join(in_ledger, on="user_id", how="left").fill_null(0)
    bad = compared.filter(pl.col("notes_count").is_null()
                          | (pl.col("notes_count") != pl.col("ledger_notes")))
    yield dg.AssetCheckResult(check_name=COUNTS, asset_key=THREADS, passed=bad.height == 0,
                              metadata={"accounts_checked": compared.height,
                                        "mismatches": bad.height})

    shown = counts.join(accounts.select("user_id", pl.col("is_bot").alias("planned_bot"),
                                        pl.col("description").alias("planned")),
                        on="user_id")
    wrong = shown.filter((pl.col("is_bot") != pl.col("planned_bot")).fill_null(True)
                         | (pl.col("description") != pl.col("planned")).fill_null(True))
    yield dg.AssetCheckResult(check_name=VERDICTS, asset_key=THREADS, passed=wrong.height == 0,
                              metadata={"accounts_checked": shown.height,
                                        "wrong": wrong.height,
                                        "first": ", ".join(wrong["username"].head(5))})

    real = [u.lower() for u in mapping["real_username"].drop_nulls() if len(u) >= 3]
    texts = pl.concat([plan.notes.select(pl.col("text").fill_null("")),
                       plan.accounts.select(pl.col("description").alias("text"))])
    lowered = texts["text"].str.to_lowercase()
    leaks = [u for u in real if lowered.str.contains(
        rf"(?:^|[^\w]){re.escape(u)}(?:[^\w]|$)").any()]
    yield dg.AssetCheckResult(check_name=PSEUDONYMOUS, asset_key=THREADS, passed=not leaks,
                              metadata={"real_names_checked": len(real),
                                        "found": len(leaks)})

    sample = check_threading(client, tokens, tables["notes"].join(
        accounts.select("user_id"), on="user_id", how="semi"), config.verify_sample)
    problems = sample.filter(pl.col("problem").is_not_null())
    yield dg.AssetCheckResult(check_name=THREADING, asset_key=THREADS,
                              passed=problems.height == 0,
                              metadata={"sampled": sample.height, "problems": problems.height})

