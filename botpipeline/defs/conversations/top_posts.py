"""conversations/top_posts: the most replied-to posts and the top performers of a partition.

Most replied-to counts the replies that arrived in the partition, whether or not the target is
in the data (a missing target is the best hydration candidate: the Open Assistant seed's first
TODO). The engagement score is seed 003's ``(likes + reposts*2 + replies*1.5) / 1000``, with
replies the larger of the platform's count and the replies observed; posts scoring at least
``min_engagement_score`` are top performers, at most ``max_top_performers`` of them.
"""

import dagster as dg

from botpipeline.defs.conversations.reconstruction import SCHEMA
from botpipeline.defs.conversations.sources import DAILY, SIMULATED, PostSource
from botpipeline.defs.metadata import markdown_preview
from botpipeline.defs.resources import Warehouse


class TopPostsConfig(dg.Config):
    min_engagement_score: float = 0.01
    max_top_performers: int = 50
    keep: int = 1000
    """Rows kept: the union of the top ``keep`` by replies and by engagement."""


def top_posts_sql(source: PostSource, key: str, config: TopPostsConfig) -> str:
    part = source.filter(key)
    posts = ".".join(source.posts_key)
    conv = f"{SCHEMA}.{source.prefix}posts"
    return f"""
        WITH replies AS (
            SELECT parent_id AS post_id, count(*) AS replies_in_partition,
                   bool_and(parent_status = 'in_data') AS in_data
            FROM {conv} WHERE {part} AND parent_status IN ('in_data', 'placeholder')
            GROUP BY parent_id),
        scored AS (
            SELECT coalesce(p.post_id, r.post_id) AS post_id, p.platform, p.author_id,
                   p.author_username, p.kind, p.created_at, p.text,
                   p.post_id IS NOT NULL AS in_partition,
                   coalesce(r.replies_in_partition, 0) AS replies_in_partition,
                   p.reply_count AS reply_count_reported,
                   coalesce(p.like_count, 0) AS likes, coalesce(p.repost_count, 0) AS reposts,
                   (coalesce(p.like_count, 0) + coalesce(p.repost_count, 0) * 2
                    + greatest(coalesce(p.reply_count, 0),
                               coalesce(r.replies_in_partition, 0)) * 1.5) / 1000
                       AS engagement_score
            FROM (SELECT * FROM {posts} WHERE {part}) p
            FULL OUTER JOIN replies r USING (post_id)),
        ranked AS (
            SELECT *, rank() OVER (ORDER BY replies_in_partition DESC) AS most_replied_rank,
                   rank() OVER (ORDER BY engagement_score DESC) AS engagement_rank,
                   row_number() OVER (ORDER BY replies_in_partition DESC, post_id) AS _r,
                   row_number() OVER (ORDER BY engagement_score DESC, post_id) AS _n
            FROM scored)
        SELECT * EXCLUDE (_r, _n),
               engagement_score >= {float(config.min_engagement_score)}
                   AND _n <= {int(config.max_top_performers)} AS is_top_performer
        FROM ranked
        WHERE (_r <= {int(config.keep)} AND replies_in_partition > 0)
           OR (_n <= {int(config.keep)} AND engagement_score > 0)"""


def build_top_posts_asset(source: PostSource) -> dg.AssetsDefinition:
    name = f"{source.prefix}top_posts"

    @dg.asset(key=[SCHEMA, name], group_name="conversations",
              deps=[dg.AssetKey([SCHEMA, f"{source.prefix}posts"])],
              partitions_def=source.partitions_def, kinds={"duckdb", "parquet"},
              description=__doc__)
    def top_posts(context: dg.AssetExecutionContext, config: TopPostsConfig,
                  warehouse: Warehouse) -> dg.MaterializeResult:
        key = context.partition_key
        with warehouse.get_connection() as con:
            select = f"SELECT {source.tag(key)} AS {source.partition_column}, * FROM " \
                     f"({top_posts_sql(source, key, config)})"
            rows = warehouse.lake.write(SCHEMA, name, key, select, con=con,
                                        partition_column=source.partition_column,
                                        order_by="most_replied_rank, post_id")
            warehouse.lake.register_views(con)
            table = f"{SCHEMA}.{name}"
            where = source.filter(key)
            replied = con.sql(f"SELECT post_id, in_partition, replies_in_partition, "
                              f"left(text, 80) AS text FROM {table} WHERE {where} "
                              f"ORDER BY most_replied_rank, post_id LIMIT 10").pl()
            top = con.sql(f"SELECT post_id, engagement_score, likes, reposts, "
                          f"left(text, 80) AS text FROM {table} WHERE {where} AND "
                          f"is_top_performer ORDER BY engagement_rank, post_id LIMIT 10").pl()
            performers = con.execute(f"SELECT count(*) FILTER (WHERE is_top_performer) "
                                     f"FROM {table} WHERE {where}").fetchall()[0][0]
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows, "top_performers": performers,
            "most_replied": markdown_preview(replied),
            "top_performers_preview": markdown_preview(top)})

    return top_posts


daily_top_posts = build_top_posts_asset(DAILY)
simulated_top_posts = build_top_posts_asset(SIMULATED)
