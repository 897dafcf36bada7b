"""Figures shown in asset metadata. Pure matplotlib, no Dagster."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402


def tweets_per_hour(frame: pl.DataFrame, title: str):
    """Stacked bars of tweets per hour by kind; ``frame`` has hour, kind, tweets."""
    fig, ax = plt.subplots(figsize=(8, 3))
    bottom = None
    hours = list(range(24))
    for kind in sorted(frame["kind"].unique().to_list()):
        part = dict(frame.filter(pl.col("kind") == kind).select("hour", "tweets").iter_rows())
        values = [part.get(h, 0) for h in hours]
        ax.bar(hours, values, bottom=bottom, label=kind)
        bottom = values if bottom is None else [a + b for a, b in zip(bottom, values)]
    ax.set_xlabel("hour (UTC)")
    ax.set_ylabel("tweets")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=4)
    return fig
