"""raw/engagements: who liked or reposted which post, when, on one collection date.

Three sources land in one table, raw.engagements:
- reposts in the ingested tweets (core.posts of the date): exact time, account id;
- the Danish election study's liker / retweeter scrapes under
  ``incoming/engagements/<date>/`` (any folder with a ``CSVs/`` subfolder): usernames, seen at
  the scrape time;
- twarc2 ``liking-users`` / ``retweeted-by`` output (``*.jsonl``) in the same date folder.
Usernames are resolved to account ids through core.accounts when the account is known;
``actor`` (the account id, else ``@username`` lower-cased) is the identity every coordination
asset groups on. Malformed rows go to raw.engagement_quarantine with their reason.
"""

from datetime import date

import dagster as dg
import polars as pl

from botpipeline.defs.metadata import markdown_preview
from botpipeline.defs.partitions import daily_partitions, lookback_sql
from botpipeline.defs.resources import Warehouse
from botpipeline.readers.likers_scrape import read_likers_pull
from botpipeline.readers.twarc_engagements import read_twarc_engagements

SOURCE = "engagements"
POSTS = dg.AssetKey(["core", "posts"])
ACCOUNTS = dg.AssetKey(["core", "accounts"])
JETSTREAM = dg.AssetKey(["raw", "bluesky_jetstream"])

# Likes recorded from the Bluesky firehose: exact time, account id (DID).
JETSTREAM_LIKES = """
    SELECT platform, post_id, action, account_id, username, engaged_at, observed_at, source,
           source_file
    FROM raw.bluesky_jetstream_likes WHERE collection_date = DATE '{key}'"""

STREAM_REPOSTS = """
    SELECT platform, reposted_id AS post_id, 'repost' AS action, author_id AS account_id,
           author_username AS username, created_at AS engaged_at, created_at AS observed_at,
           'stream' AS source, NULL::VARCHAR AS source_file
    FROM core.posts
    WHERE collection_date = DATE '{key}' AND kind = 'repost' AND reposted_id IS NOT NULL"""

# Files give usernames; the newest snapshot of the past week names the account id.
RESOLVE = """
    WITH known AS (
        SELECT lower(username) AS handle, arg_max(account_id, observed_at) AS known_id
        FROM core.accounts
        WHERE {accounts_window} AND username IS NOT NULL
        GROUP BY handle)
    SELECT DATE '{key}' AS collection_date, e.platform, e.post_id, e.action,
           coalesce(e.account_id, k.known_id) AS account_id, e.username,
           coalesce(e.account_id, k.known_id, '@' || lower(e.username)) AS actor,
           e.engaged_at, e.observed_at, e.source, e.source_file
    FROM ({union}) e LEFT JOIN known k ON k.handle = lower(e.username)
    QUALIFY row_number() OVER (PARTITION BY e.platform, e.post_id, e.action,
                               coalesce(e.account_id, k.known_id, '@' || lower(e.username))
                               ORDER BY e.engaged_at NULLS LAST, e.observed_at, e.source) = 1"""


CHECK = "file_quarantine_share"


class EngagementsConfig(dg.Config):
    max_quarantine_share: float = 0.05
    """The check warns above this share of quarantined rows among the rows read from files."""


@dg.asset(key=["raw", "engagements"], group_name="raw", deps=[POSTS, ACCOUNTS, JETSTREAM],
          partitions_def=daily_partitions, kinds={"duckdb", "parquet", "polars"},
          description=__doc__,
          check_specs=[dg.AssetCheckSpec(CHECK, asset=["raw", "engagements"],
                                         description="Few quarantined engagement rows.")])
def raw_engagements(context: dg.AssetExecutionContext, config: EngagementsConfig,
                    warehouse: Warehouse):
    key = context.partition_key
    folder = warehouse.incoming(SOURCE) / key
    reads = {"likers_scrape": read_likers_pull(folder), "twarc": read_twarc_engagements(folder)}
    for name, read in reads.items():
        if not read.nothing_lost:  # a reader bug, never bad input: stop loudly
            raise dg.Failure(f"{name} reader lost rows: {read.balance()}")
    files = pl.concat([r.engagements for r in reads.values()])
    quarantine = pl.concat([r.quarantine for r in reads.values()]).with_columns(
        pl.lit(date.fromisoformat(key)).alias("collection_date"))
    with warehouse.transaction(context) as lake, warehouse.get_connection() as con:
        con.register("_files", files)
        union = f"SELECT * FROM _files UNION ALL BY NAME ({STREAM_REPOSTS.format(key=key)})"
        if "raw.bluesky_jetstream_likes" in {t.qualified for t in lake.tables()}:
            union += f" UNION ALL BY NAME ({JETSTREAM_LIKES.format(key=key)})"
        resolve = RESOLVE.format(key=key, union=union, accounts_window=lookback_sql(key, 7))
        rows = lake.write("raw", "engagements", key, resolve,
                          con=con, order_by="action, post_id, actor")
        quarantined = lake.write("raw", "engagement_quarantine", key, quarantine)
        lake.register_views(con)
        where = f"collection_date = DATE '{key}'"
        by_source = con.sql(f"SELECT source, action, count(*) AS engagements, "
                            f"count(DISTINCT actor) AS accounts, count(DISTINCT post_id) AS posts "
                            f"FROM raw.engagements WHERE {where} GROUP BY ALL ORDER BY ALL").pl()
        unresolved = con.sql(f"SELECT count(*) FROM raw.engagements WHERE {where} "
                             f"AND account_id IS NULL").fetchall()[0][0]
    context.log.info(f"{rows} engagements from {len(reads)} file readers and the stream; "
                     f"{quarantined} rows quarantined")
    warehouse.refresh_catalog(context.log)
    counters = {name: {k: getattr(r, k) for k in ("files_read", "files_quarantined",
                                                  "rows_read", "rows_quarantined",
                                                  "duplicates_dropped")}
                for name, r in reads.items()}
    read = sum(r.rows_read - r.tracked_rows for r in reads.values())
    bad = sum(r.rows_quarantined + r.files_quarantined for r in reads.values())
    share = bad / read if read else 0.0
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "quarantined_rows": quarantined,
        "usernames_without_account_id": unresolved,
        "tracked_tweets": reads["likers_scrape"].tracked_tweets,
        "readers": counters, "by_source": markdown_preview(by_source, rows=20),
        "quarantine_reasons": markdown_preview(
            quarantine.group_by("reason").len().sort("len", descending=True), rows=10,
            width=120) if quarantine.height else "none",
    })
    yield dg.AssetCheckResult(
        check_name=CHECK, passed=share <= config.max_quarantine_share,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rows_read_from_files": read, "quarantined_rows_and_files": bad,
                  "share": round(share, 4)})
