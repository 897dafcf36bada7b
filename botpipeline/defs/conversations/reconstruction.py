"""Conversation reconstruction assets, for the daily posts and for simulation runs.

One computation writes three tables, so it is one multi-asset per post source:
``conversations/<prefix>posts`` (each post with parent, root, depth, parent status, quirks),
``conversations/<prefix>threads`` (per thread touched by the partition: size, depth,
participants, first/last time) and ``conversations/<prefix>missing_parents`` (parents not in
the data, to hydrate later).
"""

import dagster as dg

from botpipeline.defs.metadata import markdown_preview
from botpipeline.defs.conversations.sources import (DAILY, LOOKBACK_DAYS, NODE_COLUMNS,
                                                 SIMULATED, PostSource)
from botpipeline.defs.resources import Warehouse
from botpipeline.plots import thread_sizes
from botpipeline.transforms.conversations import reconstruct

SCHEMA = "conversations"


class ConversationConfig(dg.Config):
    lookback_days: int = LOOKBACK_DAYS
    """Earlier daily partitions searched for parents (replies arrive after their parents);
    at most LOOKBACK_DAYS (7), the window the lineage declares."""


def nodes_sql(source: PostSource, key: str, lookback_days: int, con) -> str:
    posts = ".".join(source.posts_key)
    sql = (f"SELECT {NODE_COLUMNS}, {source.filter(key)} AS is_current FROM {posts} "
           f"WHERE {source.window(key, lookback_days)}")
    if source.daily and has_table(con, "raw", "hydrated_tweets"):  # parents fetched by API
        sql += f" UNION ALL SELECT {NODE_COLUMNS}, false AS is_current FROM raw.hydrated_tweets"
    return sql


def has_table(con, schema: str, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND "
                            "view_name = ?", [schema, table]).fetchall()[0][0])


def build_conversation_assets(source: PostSource) -> dg.AssetsDefinition:
    keys = {name: dg.AssetKey([SCHEMA, f"{source.prefix}{name}"])
            for name in ("posts", "threads", "missing_parents")}
    deps = source.deps()  # daily: the look-back window reads earlier partitions too

    @dg.multi_asset(
        name=f"{source.prefix}conversations",
        specs=[dg.AssetSpec(key, deps=deps, group_name="conversations",
                            partitions_def=source.partitions_def, kinds={"duckdb", "parquet"})
               for key in keys.values()],
        partitions_def=source.partitions_def,
        description=__doc__,
    )
    def conversations(context: dg.AssetExecutionContext, config: ConversationConfig,
                      warehouse: Warehouse):
        key = context.partition_key
        col = source.partition_column
        with warehouse.transaction(context) as lake, warehouse.get_connection() as con:
            result = reconstruct(con, nodes_sql(source, key, config.lookback_days, con))
            rows = {}
            for name, temp in (("posts", result.posts), ("threads", result.threads),
                               ("missing_parents", result.missing_parents)):
                rows[name] = lake.write(
                    SCHEMA, f"{source.prefix}{name}", key,
                    f"SELECT {source.tag(key)} AS {col}, * FROM {temp}", con=con,
                    partition_column=col,
                    order_by={"posts": "post_id", "threads": "root_id",
                              "missing_parents": "missing_post_id"}[name])
            stats = con.execute(f"""
                SELECT count(*) FILTER (WHERE parent_id IS NULL),
                       count(*) FILTER (WHERE parent_id IS NOT NULL),
                       count(*) FILTER (WHERE parent_status = 'in_data'),
                       count(*) FILTER (WHERE parent_status = 'placeholder'),
                       coalesce(max(depth), 0)
                FROM {result.posts}""").fetchall()[0]
            sizes = con.sql(f"SELECT posts FROM {result.threads}").pl()
            top = con.sql(f"SELECT root_id, posts, replies, max_depth, participants "
                          f"FROM {result.threads} ORDER BY replies DESC, root_id LIMIT 10").pl()
        roots, replies, attached, placeholders, depth = stats
        common = {
            "posts": rows["posts"], "roots": roots, "replies": replies,
            "replies_attached_in_data": attached,
            "replies_under_placeholder_parents": placeholders,
            "replies_accounted": attached + placeholders
            + result.quirks["self_replies"] + result.quirks["cycles_broken"],
            "threads": rows["threads"], "missing_parents": rows["missing_parents"],
            "max_depth": depth, "pointer_jumping_rounds": result.rounds,
            "quirks": dict(result.quirks),
        }
        if source.daily:
            common["lookback_days"] = config.lookback_days
        plot_path = (warehouse.outputs / "plots" / SCHEMA
                     / f"{source.prefix}thread_sizes" / f"{key}.png")
        yield dg.MaterializeResult(asset_key=keys["posts"], metadata={
            "dagster/row_count": rows["posts"], **common})
        yield dg.MaterializeResult(asset_key=keys["threads"], metadata={
            "dagster/row_count": rows["threads"], "most_replied": markdown_preview(top),
            "thread_sizes": _plot(sizes, key, plot_path), **common})
        yield dg.MaterializeResult(asset_key=keys["missing_parents"], metadata={
            "dagster/row_count": rows["missing_parents"],
            "missing_parent_share_of_replies":
                round(placeholders / replies, 4) if replies else 0.0})
        warehouse.refresh_catalog(context.log)

    return conversations


def _plot(sizes, key: str, path):
    from botpipeline.defs.metadata import png_metadata

    return png_metadata(thread_sizes(sizes["posts"].to_list(), f"thread sizes {key}"), path)


daily_conversations = build_conversation_assets(DAILY)
simulated_conversations = build_conversation_assets(SIMULATED)
