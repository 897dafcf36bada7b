"""scores/human_posts: the day's posts with seed 004's ingestion filter applied.

Posts whose author the rule filter calls a likely bot are filtered out, as are posts in other
languages than ``languages`` (when given). The summary (landed, filtered as bots, filtered by
language) is in the metadata, as the seed's ingestion summary was; a check warns when the bot
filter rate leaves the 5-50 % band the seed calls healthy.
"""

import dagster as dg

from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.resources import Warehouse

CHECK = "bot_filter_rate_in_band"


class HumanPostsConfig(dg.Config):
    languages: list[str] = []
    """Keep only these languages (e.g. ["en"]); empty keeps all."""
    healthy_min: float = 0.05
    healthy_max: float = 0.50


@dg.asset(key=["scores", "human_posts"], group_name="scores",
          deps=[dg.AssetKey(["scores", "rule_filter"]), dg.AssetKey(["core", "posts"])],
          partitions_def=daily_partitions, kinds={"duckdb", "parquet"}, description=__doc__,
          check_specs=[dg.AssetCheckSpec(CHECK, asset=["scores", "human_posts"],
                                         description="Bot filter rate within 5-50 %.")])
def human_posts(context: dg.AssetExecutionContext, config: HumanPostsConfig,
                warehouse: Warehouse):
    key = context.partition_key
    langs = ", ".join("'" + x.replace("'", "''") + "'" for x in config.languages)
    lang_ok = f"p.lang IN ({langs})" if config.languages else "true"
    classified = f"""
        SELECT p.*, coalesce(r.is_likely_bot, false) AS by_bot, NOT ({lang_ok}) AS other_lang
        FROM core.posts p LEFT JOIN scores.rule_filter r
          ON r.collection_date = p.collection_date AND r.platform = p.platform
         AND r.account_id = p.author_id
        WHERE p.collection_date = DATE '{key}'"""
    with warehouse.get_connection() as con:
        rows = warehouse.lake.write(
            "scores", "human_posts", key,
            f"SELECT * EXCLUDE (by_bot, other_lang) FROM ({classified}) "
            f"WHERE NOT by_bot AND NOT other_lang", con=con, order_by="post_id")
        total, bots, other = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE by_bot), "
            f"count(*) FILTER (WHERE other_lang AND NOT by_bot) FROM ({classified})"
        ).fetchall()[0]
    rate = bots / total if total else 0.0
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "fetched": total, "landed": rows,
        "filtered_bots": bots, "filtered_language": other, "bot_filter_rate": round(rate, 4)})
    yield dg.AssetCheckResult(
        check_name=CHECK, passed=config.healthy_min <= rate <= config.healthy_max,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"bot_filter_rate": round(rate, 4), "band": [config.healthy_min,
                                                              config.healthy_max]})
