"""Partition definitions shared by the domains."""

import os
import re
from datetime import date
from pathlib import Path

import dagster as dg

# The Internet Archive's Twitter Stream Grab starts in September 2011.
STREAM_GRAB_START = "2011-09-01"
START_VARIABLE = "BOTPIPELINE_PARTITIONS_START"
# Sources whose inputs sit in <data dir>/incoming/<source>/<YYYY-MM-DD>/.
DAILY_INPUTS = ("twitterstream", "twitter_v2", "engagements")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def partitions_start(data_dir: Path | None = None) -> str:
    """The first daily partition: $BOTPIPELINE_PARTITIONS_START, else the earliest
    YYYY-MM-DD folder of a daily source under ``<data dir>/incoming/`` (so the UI does not
    show thousands of empty partitions), else the Stream Grab's first day. Read when the code
    location loads: a folder older than the start becomes a partition at the next reload."""
    given = os.environ.get(START_VARIABLE, "").strip()
    if given:
        try:
            return date.fromisoformat(given).isoformat()
        except ValueError:
            raise ValueError(f"${START_VARIABLE}={given!r}: give a date as YYYY-MM-DD") from None
    from botpipeline.defs.resources import default_data_dir

    incoming = Path(data_dir or default_data_dir()) / "incoming"
    found = []
    for source in DAILY_INPUTS:
        folder = incoming / source
        names = [p.name for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
        for name in names:
            try:
                found.append(date.fromisoformat(name).isoformat() if _DATE.match(name) else None)
            except ValueError:
                continue
    found = [d for d in found if d and d >= STREAM_GRAB_START]
    return min(found) if found else STREAM_GRAB_START


# end_offset=1 makes today's partition exist, so a collector or a file dropped today can be
# ingested today.
daily_partitions = dg.DailyPartitionsDefinition(start_date=partitions_start(), end_offset=1)

# One partition per OASIS simulation run (the run id); the OASIS sensor adds them as run
# folders appear under incoming/oasis/.
oasis_runs = dg.DynamicPartitionsDefinition(name="oasis_runs")


def lookback_mapping(days: int) -> dg.TimeWindowPartitionMapping:
    """The lineage of a look-back: a daily partition reads itself and ``days`` before it."""
    return dg.TimeWindowPartitionMapping(start_offset=-days)


def checked_lookback(days: int, window: int, asset: str) -> int:
    """``days`` (run config) when the asset's lineage, ``window`` days, covers it; else a
    dg.Failure, so the UI's lineage never understates what a run read."""
    if not 0 <= days <= window:
        raise dg.Failure(f"{asset}: lookback_days {days} is outside its lineage, which maps "
                         f"each date to the {window} dates before it; give 0 to {window} (a "
                         f"wider window is a code change: the asset's partition mapping)")
    return days


def lookback_sql(key: str, days: int) -> str:
    """SQL condition: a daily partition ``key`` and the ``days`` collection dates before it."""
    return (f"collection_date BETWEEN DATE '{key}' - INTERVAL {int(days)} DAY "
            f"AND DATE '{key}'")

# One partition per labelled account list under incoming/labels/ (a folder, or a bare CSV);
# the label-set sensor and `botpipeline run` add them.
label_sets = dg.DynamicPartitionsDefinition(name="label_sets")
