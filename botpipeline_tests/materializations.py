"""Reading what a job run materialized, for tests."""

from __future__ import annotations


def metadata(result, key: str) -> dict:
    """The metadata values of asset ``key`` ("group/name") in an execute_in_process result."""
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == key:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"{key} not materialized")
