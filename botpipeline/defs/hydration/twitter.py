"""raw/hydrated_tweets: missing parents of a date fetched through the Twitter API v2.

Reads conversations.missing_parents for the date, skips ids fetched (or reported missing) on
any earlier run, looks the rest up 100 at a time, and writes raw.hydrated_tweets (core post
columns) and raw.hydration_errors (ids the API says are deleted, suspended or protected).
Reconstruction reads raw.hydrated_tweets as extra posts; a sensor re-runs it for the date once
a hydration run succeeds, so the hydrated parents join their conversations.

The bearer token comes from $TWITTER_BEARER_TOKEN through the ``twitter_api`` resource; it is
never logged or stored.
"""

import os

import dagster as dg
import polars as pl
from pydantic import Field, PrivateAttr

from botpipeline.clients.twitter_api import TwitterApiClient
from botpipeline.defs.conversations.reconstruction import daily_conversations, has_table
from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.resources import Warehouse
from botpipeline.transforms.twitter_v2 import v2_posts


class TwitterApi(dg.ConfigurableResource):
    """Twitter API v2. The token is read from the environment when a run needs it."""

    base_url: str = Field(default="https://api.twitter.com",
                          description="API root; tests point it at a local server.")
    token_env_var: str = Field(default="TWITTER_BEARER_TOKEN",
                               description="Environment variable holding the bearer token.")
    timeout_seconds: float = 30.0
    max_retries: int = 5
    _client: TwitterApiClient | None = PrivateAttr(default=None)

    def client(self) -> TwitterApiClient:
        token = os.environ.get(self.token_env_var, "")
        if not token:
            raise dg.Failure(description=f"Hydration needs a Twitter API v2 bearer token: set "
                                         f"the environment variable {self.token_env_var}.")
        return TwitterApiClient(self.base_url, token, timeout=self.timeout_seconds,
                                max_retries=self.max_retries)


ERRORS_SCHEMA = {"post_id": pl.String, "title": pl.String, "detail": pl.String}


@dg.asset(key=["raw", "hydrated_tweets"], group_name="hydration",
          deps=[dg.AssetKey(["conversations", "missing_parents"])],
          partitions_def=daily_partitions, pool="twitter_api", kinds={"duckdb", "parquet"},
          description=__doc__)
def hydrated_tweets(context: dg.AssetExecutionContext, warehouse: Warehouse,
                    twitter_api: TwitterApi) -> dg.MaterializeResult:
    key = context.partition_key
    with warehouse.get_connection() as con:
        done = ""
        for table, column in (("hydrated_tweets", "post_id"), ("hydration_errors", "post_id")):
            if has_table(con, "raw", table):
                done += (f" AND missing_post_id NOT IN (SELECT {column} FROM raw.{table} "
                         f"WHERE collection_date <> DATE '{key}')")
        wanted = [row[0] for row in con.execute(
            f"SELECT missing_post_id FROM conversations.missing_parents "
            f"WHERE collection_date = DATE '{key}' {done} ORDER BY missing_post_id").fetchall()]
    client = twitter_api.client()
    posts, errors = [], []
    for number, page in enumerate(client.lookup_tweets(wanted), start=1):
        includes = page.get("includes") or {}
        posts.append(v2_posts(page.get("data") or [], includes.get("users"), "twitter_api"))
        errors.extend({"post_id": e.get("resource_id") or e.get("value"),
                       "title": e.get("title"), "detail": e.get("detail")}
                      for e in page.get("errors") or [])
        context.log.info(f"{key}: batch {number}: {sum(p.height for p in posts)} of "
                         f"{len(wanted)} looked up")
    stamp = pl.lit(pl.Series([key]).str.to_date()[0]).alias("collection_date")
    frame = (pl.concat(posts) if posts else v2_posts([])).with_columns(stamp)
    with warehouse.transaction(context) as lake:
        rows = lake.write("raw", "hydrated_tweets", key, frame, order_by="post_id")
        failed = lake.write("raw", "hydration_errors", key,
                            pl.DataFrame(errors, schema=ERRORS_SCHEMA).with_columns(stamp))
    warehouse.refresh_catalog(context.log)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "requested": len(wanted), "hydrated": rows,
        "not_available": failed, "api_calls": -(-len(wanted) // 100)})


hydrate_job = dg.define_asset_job(
    "hydrate_missing_parents", selection=dg.AssetSelection.assets(hydrated_tweets),
    description="Fetch a date's missing parents through the Twitter API v2.")

_refresh_conversations = dg.define_asset_job(
    "refresh_conversations",
    # Publishing to a server is its own job (sharkey_threads).
    selection=(dg.AssetSelection.assets(daily_conversations).downstream()
               - dg.AssetSelection.groups("hydration") - dg.AssetSelection.groups("sharkey")),
    description="Re-run reconstruction (and what follows) for a date.")


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[hydrate_job],
                      request_job=_refresh_conversations,
                      default_status=dg.DefaultSensorStatus.RUNNING,
                      description="After hydration succeeds, reconstruct that date again so "
                                  "the hydrated parents join their conversations.")
def reconstruct_after_hydration(context: dg.RunStatusSensorContext):
    key = context.dagster_run.tags.get("dagster/partition")
    if key:
        return dg.RunRequest(partition_key=key, run_key=f"hydrated:{context.dagster_run.run_id}")
    return dg.SkipReason("hydration run had no partition")
