"""scores/toxicity: toxicity scores and inflammatory flags for the posts the signals need.

Seed 003 runs Detoxify on harvested comments and stores an InflammatoryFlagDB row per comment
(severity, triggered categories); its ``inflammatory_frequency`` signal counts them per
account. Here the posts of the configured kinds (replies by default: the stream's comments)
with non-empty text are scored once per distinct text: ``scores.toxicity_cache`` holds every
text already scored, keyed by model and text hash, across dates and runs (bots repeat
themselves). Each date's new cache rows are that date's partition of the cache, so re-running
a date replaces only what it added. Detoxify costs about 20-55 texts/s on a 2-core CPU, hence
its own pool (``toxicity``), length batching, optional int8 quantization and CUDA.
"""

import time
from datetime import UTC, datetime

import dagster as dg
import polars as pl
from pydantic import Field

from botpipeline.defs.metadata import markdown_preview, table_schema
from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.resources import Warehouse
from botpipeline.models.toxicity import (
    LABELS,
    SCORE_SCHEMA,
    DetoxifyBackend,
    ProfanityBackend,
    ToxicityBackend,
    ToxicityModelUnavailable,
    inflammatory_flags_sql,
    text_hash_sql,
)

SCHEMA = "scores"
TABLE = "toxicity"
CACHE = "toxicity_cache"
POST_KINDS = ("post", "reply", "repost", "quote")
BACKENDS = ("profanity", "detoxify")


class ToxicityModel(dg.ConfigurableResource):
    """Which toxicity model scores texts, and how it runs.

    ``profanity`` (default) ships its model and runs anywhere, but gives only ``toxicity``;
    ``detoxify`` needs its checkpoint locally (nothing is downloaded during a run).
    """

    backend: str = Field(default="profanity", description="\"profanity\" (offline, "
                         "alt-profanity-check, toxicity only) or \"detoxify\".")
    model_type: str = Field(default="original", description="Detoxify model: original, "
                            "unbiased, multilingual, original-small, unbiased-small.")
    checkpoint: str | None = Field(default=None, description="Local Detoxify .ckpt file. "
                                   "Unset: $TORCH_HOME/hub/checkpoints/<release file name>.")
    huggingface_config_path: str | None = Field(
        default=None, description="Folder with the transformers config.json and tokenizer "
        "files. Unset: the Hugging Face cache ($HF_HOME).")
    device: str = Field(default="cpu", description="cpu, cuda, cuda:N, or auto (CUDA when "
                        "present).")
    batch_size: int = Field(default=32, description="Texts per forward pass (batched by "
                            "length).")
    quantize: bool = Field(default=False, description="Dynamic int8 quantization of the "
                           "Linear layers on CPU (2-3x faster, scores differ slightly and are "
                           "cached under their own model name).")

    def load(self) -> ToxicityBackend:
        if self.backend == "profanity":
            return ProfanityBackend()
        if self.backend == "detoxify":
            return DetoxifyBackend(self.model_type, checkpoint=self.checkpoint,
                                   huggingface_config_path=self.huggingface_config_path,
                                   device=self.device, batch_size=self.batch_size,
                                   quantize=self.quantize)
        raise ToxicityModelUnavailable(
            f"toxicity_model backend {self.backend!r} unknown: use one of {', '.join(BACKENDS)}")


class ToxicityConfig(dg.Config):
    kinds: list[str] = ["reply"]
    """Post kinds scored (post, reply, repost, quote); the comment signals need replies."""
    flag_threshold: float = 0.5
    """A post is inflammatory when a label scores at least this; those labels are triggered."""


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _cached_elsewhere(lake, key: str, model: str) -> str:
    """Hashes of ``model``'s cache rows from other dates (this date's rows are replaced)."""
    if not any((ref.schema, ref.table) == (SCHEMA, CACHE) for ref in lake.tables()):
        return "SELECT NULL::VARCHAR AS text_hash WHERE false"
    return (f"SELECT text_hash FROM {SCHEMA}.{CACHE} WHERE model = {_quote(model)} "
            f"AND collection_date <> DATE '{key}'")


@dg.asset(key=[SCHEMA, TABLE], group_name="scores", deps=[dg.AssetKey(["core", "posts"])],
          partitions_def=daily_partitions, pool="toxicity", kinds={"duckdb", "parquet"},
          description=__doc__)
def toxicity_scores(context: dg.AssetExecutionContext, config: ToxicityConfig,
                    warehouse: Warehouse, toxicity_model: ToxicityModel) -> dg.MaterializeResult:
    key = context.partition_key
    unknown = sorted(set(config.kinds) - set(POST_KINDS))
    if unknown or not config.kinds:
        raise dg.Failure(description=f"kinds {unknown or '[]'} not understood: use a non-empty "
                                     f"list of {', '.join(POST_KINDS)}", allow_retries=False)
    lake = warehouse.lake
    if not lake.has_partition("core", "posts", key):
        raise dg.Failure(description=f"core.posts has no partition {key}: materialize "
                                     f"core/posts for {key} first", allow_retries=False)
    try:
        backend = toxicity_model.load()
    except ToxicityModelUnavailable as err:
        raise dg.Failure(description=str(err), allow_retries=False) from None
    model = backend.name
    context.log.info(f"toxicity model: {model}")

    kinds = ", ".join(_quote(kind) for kind in config.kinds)
    posts = (f"SELECT *, {text_hash_sql('text')} AS text_hash FROM core.posts "
             f"WHERE collection_date = DATE '{key}' AND kind IN ({kinds}) "
             f"AND trim(coalesce(text, '')) <> ''")
    with warehouse.transaction(context) as lake, warehouse.get_connection() as con:
        started = time.perf_counter()
        con.execute(f"CREATE TEMP TABLE texts AS SELECT DISTINCT text_hash, text FROM ({posts})")
        distinct = con.execute("SELECT count(*) FROM texts").fetchall()[0][0]
        todo = con.sql(f"SELECT text_hash, text FROM texts ANTI JOIN "
                       f"({_cached_elsewhere(lake, key, model)}) USING (text_hash) "
                       f"ORDER BY text_hash").pl()
        scoring_started = time.perf_counter()
        scores = backend.score(todo["text"].to_list()) if todo.height else \
            pl.DataFrame(schema=SCORE_SCHEMA)
        scoring_seconds = time.perf_counter() - scoring_started
        new_rows = pl.concat([
            todo.select(pl.lit(model).alias("model"), "text_hash"),
            scores.select(pl.col(label).cast(pl.Float64) for label in LABELS),
        ], how="horizontal").with_columns(
            pl.lit(datetime.now(UTC).replace(tzinfo=None)).cast(pl.Datetime("us"))
            .alias("scored_at"))
        lake.write(SCHEMA, CACHE, key, new_rows.with_columns(
            pl.lit(datetime.fromisoformat(key).date()).alias("collection_date")),
            order_by="text_hash")
        lake.register_views(con)
        total_seconds = time.perf_counter() - started

        labels = ", ".join(LABELS)
        cache = (f"SELECT text_hash, {labels} FROM {SCHEMA}.{CACHE} SEMI JOIN texts "
                 f"USING (text_hash) WHERE model = {_quote(model)} QUALIFY row_number() OVER "
                 f"(PARTITION BY text_hash ORDER BY collection_date, scored_at) = 1")
        select = (f"SELECT DATE '{key}' AS collection_date, p.platform, p.post_id, "
                  f"p.author_id, p.kind, p.text_hash, {_quote(model)} AS model, "
                  f"{', '.join('c.' + label for label in LABELS)}, "
                  f"{inflammatory_flags_sql(config.flag_threshold)} "
                  f"FROM ({posts}) p JOIN ({cache}) c USING (text_hash)")
        rows = lake.write(SCHEMA, TABLE, key, select, con=con, order_by="platform, post_id")
        lake.register_views(con)
        where = f"collection_date = DATE '{key}'"
        flagged = con.execute(f"SELECT count(*) FILTER (WHERE is_inflammatory) "
                              f"FROM {SCHEMA}.{TABLE} WHERE {where}").fetchall()[0][0]
        preview = con.sql(
            f"SELECT s.post_id, s.author_id, round(s.severity, 3) AS severity, "
            f"s.triggered_categories, left(p.text, 80) AS text FROM {SCHEMA}.{TABLE} s "
            f"JOIN core.posts p USING (collection_date, platform, post_id) WHERE s.{where} "
            f"ORDER BY s.severity DESC NULLS LAST, s.post_id LIMIT 10").pl()
        schema = table_schema(con, f"{SCHEMA}.{TABLE}")

    scored, hits = todo.height, distinct - todo.height
    warehouse.refresh_catalog(context.log)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "dagster/table_name": f"{SCHEMA}.{TABLE}",
        "dagster/column_schema": schema, "model": model, "kinds": list(config.kinds),
        "flag_threshold": float(config.flag_threshold), "distinct_texts": distinct,
        "texts_scored": scored, "cache_hits": hits, "flagged": flagged,
        "scoring_seconds": round(scoring_seconds, 3),
        "texts_per_second": round(scored / scoring_seconds, 1) if scored else None,
        "texts_per_second_with_cache": (round(distinct / total_seconds, 1)
                                        if distinct else None),
        "preview": markdown_preview(preview)})
