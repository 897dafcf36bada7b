"""Partition definitions shared by the domains."""

import dagster as dg

# The Internet Archive's Twitter Stream Grab starts in September 2011. end_offset=1 makes
# today's partition exist, so a collector or a file dropped today can be ingested today.
daily_partitions = dg.DailyPartitionsDefinition(start_date="2011-09-01", end_offset=1)

# One partition per OASIS simulation run (the run id); the OASIS sensor adds them as run
# folders appear under incoming/oasis/.
oasis_runs = dg.DynamicPartitionsDefinition(name="oasis_runs")


def lookback_sql(key: str, days: int) -> str:
    """SQL condition: a daily partition ``key`` and the ``days`` collection dates before it."""
    return (f"collection_date BETWEEN DATE '{key}' - INTERVAL {int(days)} DAY "
            f"AND DATE '{key}'")

# One partition per labelled account list under incoming/labels/ (a folder, or a bare CSV);
# the label-set sensor and `botpipeline run` add them.
label_sets = dg.DynamicPartitionsDefinition(name="label_sets")
