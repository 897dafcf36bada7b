"""Jobs and sensors of the learned model.

Training is its own job (bot_model), never part of the daily pipeline: a model is trained when
someone asks for it. Then the sensors keep the learned scores current: a new model rescores
every date that has features and re-evaluates every label set; a newly materialized feature
partition is scored by the current model; a new or changed label set becomes a partition and
is evaluated.
"""

import dagster as dg

from botpipeline.defs.models.bot_classifier import bot_classifier, model_store
from botpipeline.defs.models.bot_probability import bot_probability
from botpipeline.defs.models.labelled_accounts import LABELS_FOLDER
from botpipeline.defs.models.model_evaluation import model_evaluation
from botpipeline.defs.partitions import label_sets
from botpipeline.defs.raw.sensors import changed_inputs, files_fingerprint
from botpipeline.defs.resources import Warehouse
from botpipeline.readers.label_sets import discover

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
    folder = warehouse.lake.table_dir("features", "account_features")
    return sorted(p.name.split("=", 1)[1] for p in folder.glob("collection_date=*")
                  if (p / "data.parquet").exists()) if folder.exists() else []


@dg.asset_sensor(asset_key=bot_classifier.key, job=learned_scores_job,
                 default_status=dg.DefaultSensorStatus.RUNNING,
                 description="A new model rescores every date that has features.")
def rescore_on_new_model(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry,
                         warehouse: Warehouse):
    version = model_store(warehouse).current_version()
    for key in _dates_with_features(warehouse):
        yield dg.RunRequest(partition_key=key, run_key=f"{version}:{key}")


@dg.asset_sensor(asset_key=bot_classifier.key, job=model_evaluation_job,
                 default_status=dg.DefaultSensorStatus.RUNNING,
                 description="A new model is re-evaluated on every label set.")
def reevaluate_on_new_model(context: dg.SensorEvaluationContext,
                            asset_event: dg.EventLogEntry, warehouse: Warehouse):
    version = model_store(warehouse).current_version()
    for name in context.instance.get_dynamic_partitions(label_sets.name):
        yield dg.RunRequest(partition_key=name, run_key=f"{version}:{name}")


@dg.asset_sensor(asset_key=FEATURES, job=learned_scores_job,
                 default_status=dg.DefaultSensorStatus.RUNNING,
                 description="A newly computed feature partition is scored by the current "
                             "model (skipped while no model is trained).")
def score_new_features(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry,
                       warehouse: Warehouse):
    version = model_store(warehouse).current_version()
    partition = asset_event.dagster_event.partition if asset_event.dagster_event else None
    if version is None or partition is None:
        return dg.SkipReason("no model trained yet" if version is None else "no partition")
    return dg.RunRequest(partition_key=partition,
                         run_key=f"{version}:{partition}:{asset_event.storage_id}")


@dg.sensor(job=model_evaluation_job, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Adds each label set under incoming/labels/ as a partition and "
                       "evaluates it when new or changed (once a model exists).")
def label_sets_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse):
    root = warehouse.incoming(LABELS_FOLDER)
    found = discover(root)
    known = set(context.instance.get_dynamic_partitions(label_sets.name))
    new = [name for name in found if name not in known]
    changed = changed_inputs(context, {name: files_fingerprint(list(s.files), root)
                                       for name, s in found.items()})
    version = model_store(warehouse).current_version()
    requests = [dg.RunRequest(partition_key=name, run_key=f"{version}:{name}:{fingerprint}")
                for name, fingerprint in changed] if version else []
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[label_sets.build_add_request(new)] if new else [],
        skip_reason=None if requests or new else "no new or changed label sets")
