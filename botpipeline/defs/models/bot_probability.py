"""scores/bot_probability: the current learned model's bot probability per account per date.

Scores every row of the date's feature frame with the model that models/bot_classifier made
current; each row names the model version, its threshold and whether it is flagged, so it sits
beside scores.bot_scores (the 13-signal total, unchanged) and marts.flagged_accounts says which
score flagged what. When the data dir holds the generator's truth, the metadata reports the
ROC AUC against it.
"""

from datetime import date

import dagster as dg
import polars as pl

from botpipeline.defs.metadata import markdown_preview, png_metadata
from botpipeline.defs.models.bot_classifier import model_store
from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.resources import Warehouse
from botpipeline.defs.scores.bot_scores import generator_truth
from botpipeline.plots import score_distribution
from botpipeline.transforms.evaluation import precision_recall, roc_auc
from botpipeline.transforms.profile_features import model_features

MODEL = dg.AssetKey(["models", "bot_classifier"])
FEATURES = dg.AssetKey(["features", "account_features"])


@dg.asset(key=["scores", "bot_probability"], group_name="scores", deps=[FEATURES, MODEL],
          partitions_def=daily_partitions, kinds={"sklearn", "parquet"}, description=__doc__)
def bot_probability(context: dg.AssetExecutionContext,
                    warehouse: Warehouse) -> dg.MaterializeResult:
    key = context.partition_key
    model = model_store(warehouse).current()
    if model is None:
        raise dg.Failure("no bot model trained yet: materialize models/bot_classifier "
                         "(job bot_model) first")
    with warehouse.get_connection() as con:
        features = con.sql(f"SELECT * FROM features.account_features "
                           f"WHERE collection_date = DATE '{key}'").pl()
    probability = model.predict(model_features(features))
    frame = features.select(
        pl.lit(date.fromisoformat(key)).alias("collection_date"), "platform", "account_id",
        "username").with_columns(
        pl.Series("bot_probability", probability, pl.Float64),
        pl.Series("flagged", probability >= model.threshold, pl.Boolean),
        pl.lit(model.threshold).alias("threshold"), pl.lit(model.version).alias("model_version"),
        pl.lit(model.label_set).alias("trained_on"))
    rows = warehouse.lake.write("scores", "bot_probability", key, frame,
                                order_by=["platform", "account_id"])
    warehouse.refresh_catalog(context.log)
    flagged = int(frame["flagged"].sum() or 0)
    metadata = {"dagster/row_count": rows, "model_version": model.version,
                "trained_on": model.label_set, "threshold": round(model.threshold, 4),
                "flagged": flagged, "flagged_share": round(flagged / rows, 4) if rows else 0.0,
                "most_likely_bots": markdown_preview(
                    frame.sort("bot_probability", "account_id", descending=[True, False])
                    .select("account_id", "username", "bot_probability"))}
    if rows:
        metadata["probability_distribution"] = png_metadata(
            score_distribution(probability.tolist(), model.threshold,
                               f"bot probability {key} (model {model.version})", (0, 1),
                               "bot probability"),
            warehouse.outputs / "plots" / "scores" / "bot_probability" / f"{key}.png")
    truth = generator_truth(warehouse.data_path)
    if truth is not None:
        labelled = frame.join(truth, on="account_id", how="inner")
        metadata["auc_vs_planted_truth"] = roc_auc(labelled, "bot_probability", "is_bot")
        metadata["flag_vs_planted_truth"] = precision_recall(labelled, "flagged", "is_bot")
    return dg.MaterializeResult(metadata=metadata)
