"""exports/open_assistant_trees: reconstructed threads as Open Assistant message trees.

Writes ``<data dir>/exports/open_assistant/<partition>.trees.jsonl.gz`` (one tree per line)
and ``<partition>.pairs.jsonl.gz`` (flat prompt/reply pairs) for the threads touched by the
partition. Threads whose root is not in the data (a placeholder) are left out until their root
is hydrated; so are threads below ``min_thread_size``, messages in other languages than
``languages`` (when given, with their subtrees), and deleted posts (with their subtrees).
"""

import dagster as dg

from botpipeline.defs.conversations.reconstruction import SCHEMA, has_table
from botpipeline.defs.conversations.sources import DAILY, LOOKBACK_DAYS, SIMULATED, PostSource
from botpipeline.defs.resources import Warehouse
from botpipeline.transforms.open_assistant import write_export


class OpenAssistantExportConfig(dg.Config):
    min_thread_size: int = 2
    languages: list[str] = []
    """Languages to keep (e.g. ["en"]); empty keeps all."""
    drop_deleted: bool = True
    lookback_days: int = LOOKBACK_DAYS
    """At most LOOKBACK_DAYS (7), the window the lineage declares."""


def export_rows_sql(source: PostSource, key: str, config: OpenAssistantExportConfig,
                    deletions: bool, hydrated: bool) -> str:
    conv = f"{SCHEMA}.{source.prefix}posts"
    threads = f"{SCHEMA}.{source.prefix}threads"
    posts = ".".join(source.posts_key)
    window = source.window(key, config.lookback_days)
    keep = []
    if config.languages:
        langs = ", ".join("'" + lang.replace("'", "''") + "'" for lang in config.languages)
        keep.append(f"p.lang IN ({langs})")
    if deletions:
        keep.append("p.post_id NOT IN (SELECT tweet_id FROM raw.deletions)")
    where = " AND ".join(keep) or "true"
    return f"""
        SELECT p.platform, c.post_id, c.parent_id, c.root_id, c.depth, p.author_id, p.text,
               p.lang, p.created_at
        FROM (SELECT * FROM {conv} WHERE {window}) c
        JOIN (SELECT * FROM {posts} WHERE {window}
              {"UNION ALL BY NAME SELECT * FROM raw.hydrated_tweets" if hydrated else ""}) p
          USING (post_id)
        WHERE c.root_id IN (SELECT root_id FROM {threads} WHERE {source.filter(key)}
                            AND NOT root_is_placeholder AND posts >= {int(config.min_thread_size)})
          AND {where}
        ORDER BY c.root_id, c.depth, p.created_at, c.post_id"""


def build_export_asset(source: PostSource) -> dg.AssetsDefinition:
    name = f"{source.prefix}open_assistant_trees"

    @dg.asset(key=["exports", name], group_name="exports",
              deps=[dg.AssetKey([SCHEMA, f"{source.prefix}posts"]),
                    dg.AssetKey([SCHEMA, f"{source.prefix}threads"])],
              partitions_def=source.partitions_def, kinds={"json", "duckdb"},
              description=__doc__)
    def export(context: dg.AssetExecutionContext, config: OpenAssistantExportConfig,
               warehouse: Warehouse) -> dg.MaterializeResult:
        key = context.partition_key
        folder = warehouse.outputs / "exports" / "open_assistant"
        stem = f"{source.prefix}{key}"
        trees, pairs = folder / f"{stem}.trees.jsonl.gz", folder / f"{stem}.pairs.jsonl.gz"
        with warehouse.get_connection() as con:
            deletions = config.drop_deleted and has_table(con, "raw", "deletions")
            hydrated = source.daily and has_table(con, "raw", "hydrated_tweets")
            relation = con.sql(export_rows_sql(source, key, config, deletions, hydrated))
            columns = relation.columns
            reader = relation.to_arrow_reader(50_000)
            rows = (dict(zip(columns, values)) for batch in reader
                    for values in zip(*(col.to_pylist() for col in batch.columns)))
            counts = write_export(rows, trees, pairs)
        context.log.info(f"{key}: {counts['trees']} trees, {counts['messages']} messages -> "
                         f"{trees}")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": counts["trees"], **counts,
            "trees_file": dg.MetadataValue.path(str(trees)),
            "pairs_file": dg.MetadataValue.path(str(pairs)),
            "filters": {"min_thread_size": config.min_thread_size,
                        "languages": config.languages or "all",
                        "drop_deleted": deletions}})

    return export


daily_open_assistant_export = build_export_asset(DAILY)
simulated_open_assistant_export = build_export_asset(SIMULATED)
