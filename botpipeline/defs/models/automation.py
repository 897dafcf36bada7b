"""Jobs and the label-set sensor of the learned model, and the lake's view of what is stale.

Training is its own job (bot_model), never part of the daily pipeline: a model is trained when
someone asks for it. Automation conditions (defs/governance.py) then keep the learned scores
and evaluations current: every partition whose features or model updated since it was last
made is requested again, so a new model rescores every date. The label-set sensor adds each
set under incoming/labels/ as a partition (the conditions evaluate new partitions) and asks
again for a set whose files changed after its evaluation. `botpipeline run` judges from the
lake (stale_score_dates: scores missing, made by another model, or older than the features).
"""

import time

import dagster as dg

from botpipeline.defs.models.bot_classifier import bot_classifier, model_store
from botpipeline.defs.models.bot_probability import bot_probability
from botpipeline.defs.models.labelled_accounts import LABELS_FOLDER
from botpipeline.defs.models.model_evaluation import model_evaluation
from botpipeline.defs.partitions import label_sets
from botpipeline.defs.raw.sensors import SETTLE_SECONDS, files_fingerprint
from botpipeline.defs.resources import Warehouse
from botpipeline.readers.label_sets import discover
from botpipeline.storage.lake import ParquetLake

FEATURES = dg.AssetKey(["features", "account_features"])

bot_model_job = dg.define_asset_job(
    "bot_model", selection=dg.AssetSelection.assets(bot_classifier),
    description="Train the learned bot classifier on a label set (run config: label_set).")
learned_scores_job = dg.define_asset_job(
    "learned_scores", selection=dg.AssetSelection.assets(bot_probability),
    description="Score one collection date with the current learned model.")
model_evaluation_job = dg.define_asset_job(
    "evaluate_bot_model", selection=dg.AssetSelection.assets(model_evaluation),
    description="Judge the learned score and the heuristics on one label set.")


def _dates_with_features(warehouse: Warehouse) -> list[str]:
    committed = warehouse.lake.manifest().filter(table_name="features.account_features")
    return sorted(committed["partition"].to_list())


def _made_by(lake: ParquetLake, schema: str, table: str, key: str, version: str,
             not_before: float) -> bool:
    """Whether the partition is committed, not before ``not_before`` (unix seconds), and
    holds rows of model ``version`` only (an empty partition counts as current)."""
    committed = lake.committed_at(schema, table, key)
    if committed is None or committed < not_before:
        return False
    frame = lake.read_partition(schema, table, key, ["model_version"])
    return set(frame["model_version"].unique().to_list()) <= {version}


def stale_score_dates(warehouse: Warehouse, version: str) -> list[tuple[str, int]]:
    """Dates with features whose learned scores are missing, made by a model other than
    ``version``, or older than the features: ``[(date, features mtime in ns)]``."""
    lake = warehouse.lake
    stale = []
    for key in _dates_with_features(warehouse):
        features = lake.committed_at("features", "account_features", key)
        if not _made_by(lake, "scores", "bot_probability", key, version, features):
            stale.append((key, int(features * 1e9)))
    return stale


def evaluated_before(warehouse: Warehouse, name: str, newest: float) -> bool:
    """Whether label set ``name`` has an evaluation older than ``newest`` (its files' mtime)."""
    committed = warehouse.lake.committed_at("scores", "model_evaluation", name)
    return committed is not None and committed < newest


def evaluation_is_current(warehouse: Warehouse, name: str, version: str,
                          not_before: float = 0.0) -> bool:
    """Whether label set ``name`` was evaluated by model ``version`` after ``not_before``."""
    return _made_by(warehouse.lake, "scores", "model_evaluation", name, version, not_before)


@dg.sensor(job=model_evaluation_job, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Adds each label set under incoming/labels/ as a partition (the "
                       "automation conditions evaluate it) and re-evaluates a set whose "
                       "files changed after its evaluation.")
def label_sets_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse):
    root = warehouse.incoming(LABELS_FOLDER)
    found = discover(root)
    known = set(context.instance.get_dynamic_partitions(label_sets.name))
    new = [name for name in found if name not in known]
    fingerprints = {name: files_fingerprint(list(s.files), root) for name, s in found.items()}
    settling = [name for name, (_, newest) in fingerprints.items()
                if time.time() - newest < SETTLE_SECONDS]
    if settling:
        context.log.info(f"label sets still being copied (waiting): {sorted(settling)}")
    version = model_store(warehouse).current_version()
    # New sets and new models are the automation conditions' (newly missing partitions,
    # updated dependencies); here only evaluations older than their set's files.
    requests = [dg.RunRequest(partition_key=name,
                              run_key=f"{version}:{name}:{fingerprints[name][0]}")
                for name in sorted(found)
                if name not in settling and name in known and evaluated_before(
                    warehouse, name, fingerprints[name][1])] if version else []
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[label_sets.build_add_request(new)] if new else [],
        skip_reason=None if requests or new else
        "every label set is added and none changed since its evaluation")
