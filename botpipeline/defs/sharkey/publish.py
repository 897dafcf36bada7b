"""sharkey/accounts, profiles, notes, renotes, follows, reactions: an OASIS run on a server.

One step publishes whichever of the six assets are selected, as one concurrent task graph:
every rate limit is per user, so accounts work in parallel, each within its own limits, and a
reply waits only for its parent. Each success is written to the run's ledger
(``<data>/sharkey/<server>/<run_id>/ledger.duckdb``) at once; a re-run continues where the last
one stopped. An asset is materialized when all of its objects are on the server; otherwise the
step fails after publishing what it could, naming what is missing and why.

Checks (on the server, after publishing): every account's note and following counts equal the
ledger's, and a sample of notes read back has the dataset's author, parent, renote and text.
"""


import dagster as dg
import polars as pl

from botpipeline.clients.sharkey.client import server_slug
from botpipeline.clients.sharkey.publisher import PARTS, Publisher, PublishReport
from botpipeline.clients.sharkey.verify import check_threading, server_counts
from botpipeline.defs.metadata import markdown_preview, png_metadata
from botpipeline.defs.partitions import oasis_runs
from botpipeline.defs.resources import Warehouse
from botpipeline.defs.sharkey.plan import read_plan, sharkey_plan
from botpipeline.defs.sharkey.resources import SharkeyResource
from botpipeline.plots import publish_timeline
from botpipeline.storage.sharkey_ledger import Ledger
from botpipeline.transforms.sharkey.published import published_tables

KEYS = {part: dg.AssetKey(["sharkey", part]) for part in PARTS}
UPSTREAM = {"accounts": sharkey_plan.key, "profiles": KEYS["accounts"],
            "notes": KEYS["accounts"], "follows": KEYS["accounts"],
            "renotes": KEYS["notes"], "reactions": KEYS["notes"]}
DESCRIPTIONS = {
    "accounts": "One account per persona, created with the admin token; tokens in the store.",
    "profiles": "Display names per persona, descriptions, generated avatars and banners.",
    "notes": "The run's posts as notes, roots before replies, in dataset-time order.",
    "renotes": "Renotes of the most replied-to roots by viral personas, by affine accounts.",
    "follows": "The run's follow edges.",
    "reactions": "Reactions drawn by persona affinity (seeded, reproducible).",
}
COUNTS, FOLLOWING, THREADING = ("notes_count_matches_ledger", "following_count_matches_ledger",
                                "threading_matches_dataset")


class PublishConfig(dg.Config):
    workers: int = 16
    """Concurrent calls (each account and endpoint still has one call in flight at most)."""
    create_workers: int = 8
    """Accounts created at once (a real server takes about a second for each)."""
    dry_run: bool = False
    """Plan the calls against the ledger and report them; call nothing."""
    verify_sample: int = 50
    """Notes read back with notes/show by the threading check."""
    visibility: str = "public"
    mark_as_bot: bool = False
    """Set isBot on the accounts (off: the sandbox should look organic to detectors)."""


def ledger_path(warehouse: Warehouse, server: str, run_id: str):
    return warehouse.data_path / "sharkey" / server_slug(server) / run_id / "ledger.duckdb"


@dg.multi_asset(
    name="sharkey_publication",
    specs=[dg.AssetSpec(key, deps=[UPSTREAM[part]], group_name="sharkey",
                        partitions_def=oasis_runs, kinds={"duckdb"},
                        description=DESCRIPTIONS[part], skippable=True)
           for part, key in KEYS.items()],
    check_specs=[
        dg.AssetCheckSpec(COUNTS, asset=KEYS["notes"],
                          description="Each account's notesCount on the server equals the "
                                      "ledger's notes and renotes of that account."),
        dg.AssetCheckSpec(FOLLOWING, asset=KEYS["follows"],
                          description="Each account's followingCount equals its follows in "
                                      "the ledger."),
        dg.AssetCheckSpec(THREADING, asset=KEYS["notes"],
                          description="Sampled notes read back (notes/show) have the dataset's "
                                      "author, parent, renote and text."),
    ],
    partitions_def=oasis_runs, can_subset=True, description=__doc__)
def sharkey_publication(context: dg.AssetExecutionContext, config: PublishConfig,
                        warehouse: Warehouse, sharkey: SharkeyResource):
    run_id = context.partition_key
    parts = {key.path[-1] for key in context.selected_asset_keys}
    checks = {key.name for key in context.selected_asset_check_keys}
    with warehouse.get_connection() as con:
        plan = read_plan(con, run_id)
    client, tokens = sharkey.client(), sharkey.tokens()
    ledger = Ledger(ledger_path(warehouse, client.server, run_id), client.server, run_id)
    try:
        publisher = Publisher(plan, client, ledger, tokens, visibility=config.visibility,
                              mark_as_bot=config.mark_as_bot,
                              create_workers=config.create_workers, logger=context.log)
        if config.dry_run:
            report = publisher.publish(parts, workers=config.workers, dry_run=True)
            context.log.info(f"dry run, nothing called: {report.summary()}; lower bound "
                             f"{report.lower_bound['seconds']:.1f}s")
            return
        report = publisher.publish(parts, workers=config.workers) if parts else None
        tables = published_tables(plan, ledger.frame("SELECT * FROM sharkey.ledger"),
                                  client.server)
        failures = ledger.frame("SELECT * FROM sharkey.failures ORDER BY kind, key")
        tag = pl.lit(run_id).alias("run_id")
        with warehouse.transaction(context) as lake:
            for name, frame in {**tables, "failures": failures}.items():
                lake.write("sharkey", name, run_id, frame.with_columns(tag),
                           partition_column="run_id")
        warehouse.refresh_catalog(context.log)
        if report is not None:
            yield from _materializations(report, parts, tables)
        yield from _checks(checks, client, tokens, tables, config, ledger)
        if report is not None:
            raise_if_incomplete(report)
    finally:
        ledger.close()
        client.close()


def _materializations(report: PublishReport, parts: set[str], tables: dict):
    summary = report.summary()
    seconds, bound = report.outcome.seconds, report.lower_bound["seconds"]
    common = {"wall_seconds": round(seconds, 2), "lower_bound_seconds": round(bound, 2),
              "wall_over_bound": round(seconds / bound, 3) if bound else None,
              "server_latency_seconds": {e: round(v, 4) for e, v in
                                         report.lower_bound["latency_seconds"].items()},
              "rate_limit_waits": report.outcome.waits,
              "refused_429": dict(report.rate_limited),
              "tokens_recovered_by_signin": report.signins}
    plot = png_metadata(publish_timeline(report.outcome.timeline, bound)) \
        if report.outcome.timeline else None
    rows = {"accounts": ("accounts", "server_user_id"), "profiles": ("accounts",
                                                                     "profile_updated_at"),
            "notes": ("notes", "server_note_id"), "renotes": ("notes", "server_note_id"),
            "follows": ("follows", "server_followee_id"),
            "reactions": ("reactions", "server_note_id")}
    for part in [p for p in PARTS if p in parts]:
        kinds = PARTS[part]
        if any(report.failed(kind) for kind in kinds):
            continue
        table, column = rows[part]
        frame = tables[table]
        if part in ("notes", "renotes"):
            frame = frame.filter(pl.col("source") == ("viral" if part == "renotes"
                                                      else "dataset"))
        metadata = {"dagster/row_count": frame.filter(pl.col(column).is_not_null()).height,
                    **{f"{kind}": summary.get(kind, {}) for kind in kinds}, **common}
        if part == "notes" and plot is not None:
            metadata["publish_timeline"] = plot
        yield dg.MaterializeResult(asset_key=KEYS[part], metadata=metadata)


def _checks(checks: set[str], client, tokens, tables: dict, config: PublishConfig,
            ledger: Ledger):
    if not checks:
        return
    accounts = tables["accounts"].filter(pl.col("server_user_id").is_not_null())
    counts = server_counts(client, tokens, accounts)
    expected = (accounts.select("user_id")
                .join(tables["notes"].filter(pl.col("server_note_id").is_not_null())
                      .group_by("user_id").len("ledger_notes"), on="user_id", how="left")
                .join(tables["follows"].filter(pl.col("server_followee_id").is_not_null())
                      .group_by("follower_id").len("ledger_follows")
                      .rename({"follower_id": "user_id"}), on="user_id", how="left")
                .fill_null(0))
    compared = counts.join(expected, on="user_id", how="left")
    for name, server_col, ledger_col in ((COUNTS, "notes_count", "ledger_notes"),
                                         (FOLLOWING, "following_count", "ledger_follows")):
        if name not in checks:
            continue
        bad = compared.filter(pl.col(server_col).is_null()
                              | (pl.col(server_col) != pl.col(ledger_col)))
        yield dg.AssetCheckResult(
            check_name=name, asset_key=KEYS["notes" if name == COUNTS else "follows"],
            passed=bad.height == 0,
            metadata={"accounts_checked": compared.height, "mismatches": bad.height,
                      "server_total": int(compared[server_col].fill_null(0).sum()),
                      "ledger_total": int(compared[ledger_col].sum()),
                      "first_mismatches": markdown_preview(bad) if bad.height else "none"})
    if THREADING in checks:
        notes = tables["notes"].join(
            accounts.select("user_id"), on="user_id", how="semi")
        sample = check_threading(client, tokens, notes, config.verify_sample)
        bad = sample.filter(pl.col("problem").is_not_null())
        yield dg.AssetCheckResult(
            check_name=THREADING, asset_key=KEYS["notes"], passed=bad.height == 0,
            metadata={"sampled": sample.height, "problems": bad.height,
                      "replies_sampled": sample.filter(
                          pl.col("server_reply_id").is_not_null()).height,
                      "first_problems": markdown_preview(
                          bad.select("note_key", "problem"), width=120)
                      if bad.height else "none"})


def raise_if_incomplete(report: PublishReport) -> None:
    problems = report.outcome.failed + report.outcome.blocked
    if not problems and not report.outcome.aborted:
        return
    codes: dict[str, int] = {}
    for task in problems:
        codes[task.code or "BLOCKED"] = codes.get(task.code or "BLOCKED", 0) + 1
    first = "\n".join(f"- {t.kind} {t.key}: {t.error}" for t in report.outcome.failed[:10])
    raise dg.Failure(
        description=(f"{len(report.outcome.failed)} objects failed and "
                     f"{len(report.outcome.blocked)} were blocked by them"
                     + (f"; stopped: {report.outcome.aborted}" if report.outcome.aborted
                        else "") + ". Everything else is published and in the ledger; "
                     "fix the cause and re-run: it continues where it stopped.\n" + first),
        metadata={"by_code": codes, "summary": report.summary()})
