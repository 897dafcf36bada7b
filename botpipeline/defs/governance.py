"""Owners, tags, code versions and automation conditions of every asset, in one place.

Owners and tags follow the asset's group (its domain). The code version of an asset is a digest
of the source of the module that defines it and of every botpipeline module outside
``botpipeline.defs`` that module reaches (transforms, readers, models, clients, plots), so it
changes exactly when the code that computes the asset changes: the UI marks what an edit made
stale, and nothing else looks changed, so unchanged work is not redone.

Automation conditions say "when upstream updates, refresh" where that is the rule: whatever the
learned model scores is rescored, for every partition, when its features or the model change
(the model itself is trained only when someone asks). ``automation_condition_sensor`` (on by
default) evaluates them. What cannot be said as a condition stays a sensor: new files on disk
(folder sensors), label sets added as partitions, and reconstruction after hydration (the
hydrated parents feed reconstruction, whose missing parents feed hydration: a cycle the asset
graph cannot hold).
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from functools import cache
from types import FunctionType, ModuleType

import dagster as dg

ENGINEERING = "team:data-engineering"
DETECTION = "team:detection"
SANDBOX = "team:sandbox"

# group -> (owners, tags); a group not listed gets the engineering team and its own name.
GROUPS: dict[str, tuple[list[str], dict[str, str]]] = {
    "raw": ([ENGINEERING], {"layer": "ingest"}),
    "collectors": ([ENGINEERING], {"layer": "ingest", "remote": "true"}),
    "hydration": ([ENGINEERING], {"layer": "ingest", "remote": "true"}),
    "core": ([ENGINEERING], {"layer": "model"}),
    "conversations": ([ENGINEERING], {"layer": "model"}),
    "exports": ([ENGINEERING], {"layer": "publish"}),
    "features": ([DETECTION], {"layer": "analysis"}),
    "scores": ([DETECTION], {"layer": "analysis"}),
    "models": ([DETECTION], {"layer": "analysis"}),
    "coordination": ([DETECTION], {"layer": "analysis"}),
    "sharkey": ([SANDBOX], {"layer": "publish", "remote": "true"}),
}


def refresh_on_upstream_update() -> dg.AutomationCondition:
    """eager() on every partition, not only the latest time window: a partition is requested
    when a dependency of it updated (or it became missing) since it was last requested or
    materialized, unless a dependency is missing or anything involved is in progress."""
    return dg.AutomationCondition.eager().without(
        dg.AutomationCondition.in_latest_time_window()).with_label("eager, every partition")


# Asset -> condition. The learned scores follow the model and the features.
AUTOMATION: dict[dg.AssetKey, dg.AutomationCondition] = {
    dg.AssetKey(["scores", "bot_probability"]): refresh_on_upstream_update(),
    dg.AssetKey(["scores", "simulated_bot_probability"]): refresh_on_upstream_update(),
    dg.AssetKey(["scores", "model_evaluation"]): refresh_on_upstream_update(),
}

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_condition_sensor", target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=60,
    description="Evaluates the assets' automation conditions (botpipeline/defs/governance.py): "
                "the learned scores and model evaluations follow a new model or new features.")


def _reached(module: ModuleType) -> set[str]:
    """botpipeline modules outside defs that ``module``'s globals name (modules, functions,
    classes), followed transitively."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        for value in list(vars(current).values()):
            if isinstance(value, ModuleType):
                name = value.__name__
            else:
                name = getattr(value, "__module__", None)
                if not isinstance(name, str) or not (inspect.isclass(value)
                                                     or isinstance(value, FunctionType)):
                    continue
            if (not name.startswith("botpipeline.") or name.startswith("botpipeline.defs")
                    or name in seen or name not in sys.modules):
                continue
            seen.add(name)
            todo.append(sys.modules[name])
    return seen


@cache
def _source_digest(name: str) -> bytes:
    path = getattr(sys.modules[name], "__file__", None)
    try:
        with open(path, "rb") as source:
            return hashlib.sha256(source.read()).digest()
    except (OSError, TypeError):  # no source file (a frozen build): the name alone
        return name.encode()


def code_version_of(module_name: str) -> str:
    digest = hashlib.sha256()
    for name in [module_name, *sorted(_reached(sys.modules[module_name]))]:
        digest.update(name.encode() + b"\0" + _source_digest(name))
    return digest.hexdigest()[:12]


def _defining_module(assets_def: dg.AssetsDefinition) -> str | None:
    try:
        fn = assets_def.op.compute_fn
    except Exception:  # an external or observable definition without an op
        return None
    fn = getattr(fn, "decorated_fn", fn)
    name = getattr(fn, "__module__", None)
    return name if name in sys.modules else None


def govern(defs: dg.Definitions) -> dg.Definitions:
    """``defs`` with every asset's owners, tags, code version and automation condition set from
    this module (a code version or condition written in an asset's decorator wins), plus the
    sensor that evaluates the conditions."""
    versions: dict[dg.AssetKey, str] = {}
    for assets_def in defs.assets or []:
        if isinstance(assets_def, dg.AssetsDefinition):
            module = _defining_module(assets_def)
            if module:
                versions.update({key: code_version_of(module) for key in assets_def.keys})

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        owners, tags = GROUPS.get(spec.group_name or "", ([ENGINEERING], {}))
        return spec.replace_attributes(
            owners=sorted({*spec.owners, *owners}),
            tags={"domain": spec.group_name or "default", **tags, **spec.tags},
            code_version=spec.code_version or versions.get(spec.key),
            automation_condition=spec.automation_condition or AUTOMATION.get(spec.key))

    # dg.map_asset_specs is the stable form of Definitions.map_resolved_asset_specs (a preview
    # API in 1.13), which does the same: map every spec, keep everything else.
    from dagster._record import replace

    mappable = [d for d in defs.assets or [] if isinstance(d, (dg.AssetsDefinition, dg.AssetSpec))]
    others = [d for d in defs.assets or [] if not isinstance(d, (dg.AssetsDefinition, dg.AssetSpec))]
    governed = replace(defs, assets=[*dg.map_asset_specs(apply, mappable), *others])
    return dg.Definitions.merge(governed, dg.Definitions(sensors=[automation_sensor]))
