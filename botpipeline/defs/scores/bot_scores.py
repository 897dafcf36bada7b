"""scores/bot_scores and scores/rule_filter: the heuristic verdicts per account per date.

``scores/bot_scores`` holds seed 003's 13 signals (one column each), ``total_score``,
``flagged`` (total >= 7.0), the significant signals (>= 1.0) and the inputs that were missing.
``scores/rule_filter`` holds seed 004's verdict with the reasons. Both read
features/account_features; every threshold is run config. When the data dir holds the
generator's truth (``truth/twitterstream/accounts.csv``), the metadata reports how well each
verdict separates the planted automated and coordinated accounts (ROC AUC).
"""

from dataclasses import asdict, fields
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import create_model

from botpipeline.defs.metadata import markdown_preview, png_metadata
from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.resources import Warehouse
from botpipeline.plots import flagged_share, score_distribution, signal_contributions
from botpipeline.transforms.bot_signals import (SIGNALS, SignalConfig, bot_scores_sql,
                                                config_from, max_total)
from botpipeline.transforms.evaluation import precision_recall, roc_auc
from botpipeline.transforms.rule_filter import RuleConfig, rule_filter_sql

FEATURES = dg.AssetKey(["features", "account_features"])

# Run config with one field per signal setting, defined once in SignalConfig.
BotScoreConfig = create_model(
    "BotScoreConfig", __base__=dg.Config,
    **{f.name: (type(f.default), f.default) for f in fields(SignalConfig)})


class RuleFilterConfig(dg.Config):
    enabled: bool = True
    min_account_age_days: float = 30
    min_followers: int = 10
    max_following_ratio: float = 10
    keywords: list[str] = list(RuleConfig().keywords)

    def rules(self) -> RuleConfig:
        return RuleConfig(self.enabled, self.min_account_age_days, self.min_followers,
                          self.max_following_ratio, tuple(self.keywords))


def _features(key: str) -> str:
    return f"SELECT * FROM features.account_features WHERE collection_date = DATE '{key}'"


def generator_truth(data_dir: Path) -> pl.DataFrame | None:
    """Planted accounts of the sample generator: account_id, is_bot (automated/coordinated)."""
    path = data_dir / "truth" / "twitterstream" / "accounts.csv"
    if not path.exists():
        return None
    truth = pl.read_csv(path, schema_overrides={"user_id": pl.String})
    return truth.select(pl.col("user_id").alias("account_id"),
                        (pl.col("kind") != "human").alias("is_bot"))


@dg.asset(key=["scores", "bot_scores"], group_name="scores", deps=[FEATURES],
          partitions_def=daily_partitions, kinds={"duckdb", "parquet"}, description=__doc__)
def bot_scores(context: dg.AssetExecutionContext, config: BotScoreConfig,
               warehouse: Warehouse) -> dg.MaterializeResult:
    key = context.partition_key
    signal_config = config_from(config.model_dump())
    with warehouse.get_connection() as con:
        select = (f"SELECT DATE '{key}' AS collection_date, * FROM "
                  f"({bot_scores_sql(_features(key), signal_config)})")
        rows = warehouse.lake.write("scores", "bot_scores", key, select, con=con,
                                    order_by="platform, account_id")
        warehouse.lake.register_views(con)
        scores = con.sql(f"SELECT * FROM scores.bot_scores WHERE collection_date = "
                         f"DATE '{key}'").pl()
        history = con.sql("SELECT collection_date, avg(flagged::INT) AS flagged_share, "
                          "count(*) AS accounts FROM scores.bot_scores GROUP BY ALL "
                          "ORDER BY collection_date").pl()
    flagged = int(scores["flagged"].sum() or 0)
    plots = warehouse.outputs / "plots" / "scores"
    metadata = {
        "dagster/row_count": rows, "flagged": flagged,
        "flagged_share": round(flagged / rows, 4) if rows else 0.0,
        "flag_threshold": signal_config.flag_threshold, "max_total": max_total(signal_config),
        "mean_signal": {name: round(float(scores[name].mean() or 0), 4) for name in SIGNALS},
        "most_suspicious": markdown_preview(
            scores.sort("total_score", "account_id", descending=[True, False])
            .select("account_id", "username", "total_score", "significant_signals")),
    }
    if rows:
        metadata["score_distribution"] = png_metadata(
            score_distribution(scores["total_score"].to_list(), signal_config.flag_threshold,
                               f"bot scores {key}"), plots / "score_distribution" / f"{key}.png")
        metadata["signal_contributions"] = png_metadata(
            signal_contributions({n: float(scores[n].sum()) for n in SIGNALS},
                                 f"signal contributions {key}"),
            plots / "signal_contributions" / f"{key}.png")
        metadata["flagged_share_per_date"] = png_metadata(
            flagged_share(history["collection_date"].to_list(),
                          history["flagged_share"].to_list()),
            plots / "flagged_share_per_date.png")
    truth = generator_truth(warehouse.data_path)
    if truth is not None:
        labelled = scores.join(truth, on="account_id", how="inner")
        metadata["auc_total_score_vs_planted_truth"] = roc_auc(labelled, "total_score", "is_bot")
        metadata["flag_vs_planted_truth"] = precision_recall(labelled, "flagged", "is_bot")
        metadata["labelled_accounts"] = labelled.height
    warehouse.refresh_catalog(context.log)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(key=["scores", "rule_filter"], group_name="scores", deps=[FEATURES],
          partitions_def=daily_partitions, kinds={"duckdb", "parquet"},
          description="Seed 004's rule filter per account per date: verified accounts "
                      "trusted; age, followers, following ratio and bio keywords; reasons "
                      "listed.")
def rule_filter(context: dg.AssetExecutionContext, config: RuleFilterConfig,
                warehouse: Warehouse) -> dg.MaterializeResult:
    key = context.partition_key
    rules = config.rules()
    with warehouse.get_connection() as con:
        select = (f"SELECT DATE '{key}' AS collection_date, * FROM "
                  f"({rule_filter_sql(_features(key), rules)})")
        rows = warehouse.lake.write("scores", "rule_filter", key, select, con=con,
                                    order_by="platform, account_id")
        warehouse.lake.register_views(con)
        verdicts = con.sql(f"SELECT * FROM scores.rule_filter WHERE collection_date = "
                           f"DATE '{key}'").pl()
        reasons = dict(con.execute(
            f"SELECT reason, count(*) FROM (SELECT unnest(reasons) AS reason FROM "
            f"scores.rule_filter WHERE collection_date = DATE '{key}') GROUP BY ALL"
        ).fetchall())
    bots = int(verdicts["is_likely_bot"].sum() or 0)
    metadata = {"dagster/row_count": rows, "likely_bots": bots,
                "bot_share": round(bots / rows, 4) if rows else 0.0,
                "trusted_verified": int(verdicts["trusted_verified"].sum() or 0),
                "reasons": reasons, "config": asdict(rules) | {"keywords": list(rules.keywords)}}
    truth = generator_truth(warehouse.data_path)
    if truth is not None:
        labelled = verdicts.join(truth, on="account_id", how="inner")
        metadata["auc_rule_filter_vs_planted_truth"] = roc_auc(labelled, "is_likely_bot",
                                                               "is_bot")
        metadata["rule_filter_vs_planted_truth"] = precision_recall(labelled, "is_likely_bot",
                                                                    "is_bot")
    return dg.MaterializeResult(metadata=metadata)
