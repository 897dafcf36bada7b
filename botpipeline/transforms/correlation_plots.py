"""Figures of the correlation analysis: heatmap, histograms, scatter plots. Pure matplotlib.

Each function returns the Figure (Agg backend, nothing shown), like ``botpipeline.plots``; the
caller saves or embeds it and closes it.
"""

from __future__ import annotations

import math

import polars as pl

from botpipeline.plots import plt  # pyplot on first use
from botpipeline.transforms.correlations import correlation_square

from botpipeline.lazy import lazy

np = lazy("numpy")

SCATTER_MAX_POINTS = 20_000  # beyond this a deterministic sample is drawn, for speed


def _values(frame: pl.DataFrame, column: str) -> np.ndarray:
    """Finite values of one column as floats (booleans as 0/1)."""
    series = frame[column].cast(pl.Float64)
    return series.filter(series.is_finite()).to_numpy()


def _skewed(values: np.ndarray) -> bool:
    """Strongly right-skewed (sample skewness > 2), as counts such as followers are."""
    if values.size < 3 or values.std() == 0:
        return False
    centered = values - values.mean()
    return float((centered ** 3).mean() / values.std() ** 3) > 2


def _grid(count: int, title: str, width: float = 3.2, height: float = 2.6):
    cols = min(3, max(count, 1))
    rows = max(1, math.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows + 0.5),
                             squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig, list(axes.flat[:count])


def correlation_heatmap(corr: pl.DataFrame, method: str, title: str):
    """Square matrix of r for one method, each cell annotated; grey where r is undefined."""
    features, square = correlation_square(corr, method)
    size = max(3.0, 0.6 * len(features) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    if not features:
        ax.text(0.5, 0.5, f"no {method} correlations", ha="center", va="center")
        ax.set_axis_off()
        ax.set_title(title)
        return fig
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(square), cmap=cmap, vmin=-1, vmax=1)
    ticks = range(len(features))
    ax.set_xticks(ticks, features, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, features, fontsize=8)
    for i in ticks:
        for j in ticks:
            value = square[i, j]
            label = "–" if np.isnan(value) else f"{value:.2f}"
            color = "white" if not np.isnan(value) and abs(value) > 0.6 else "black"
            ax.text(j, i, label, ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax, shrink=0.8, label=f"{method} r")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def feature_histograms(frame: pl.DataFrame, columns: list[str], title: str):
    """One histogram per feature; log y where the feature is strongly right-skewed."""
    fig, axes = _grid(len(columns), title)
    for ax, column in zip(axes, columns):
        values = _values(frame, column)
        ax.set_title(column, fontsize=9)
        if values.size == 0:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            continue
        if frame.schema[column] == pl.Boolean:
            ax.bar([0, 1], [(values == 0).sum(), (values == 1).sum()], color="#4c72b0")
            ax.set_xticks([0, 1], ["false", "true"])
        else:
            ax.hist(values, bins=min(40, max(5, int(np.sqrt(values.size)))), color="#4c72b0")
            if _skewed(values):
                ax.set_yscale("log")
        ax.set_ylabel("accounts", fontsize=8)
        ax.text(0.98, 0.95, f"n={values.size}", ha="right", va="top", fontsize=7,
                transform=ax.transAxes)
    fig.tight_layout()
    return fig


def scatter_matrix_pairs(frame: pl.DataFrame, pairs: list[tuple[str, str]], title: str):
    """One scatter plot per (x, y) pair, on rows where both are present; skewed axes go log."""
    fig, axes = _grid(len(pairs), title)
    for ax, (x_name, y_name) in zip(axes, pairs):
        both = frame.select(pl.col(x_name).cast(pl.Float64).alias("x"),
                            pl.col(y_name).cast(pl.Float64).alias("y"))
        both = both.filter(pl.col("x").is_finite() & pl.col("y").is_finite())
        n = both.height
        for values, setter in ((both["x"].to_numpy(), ax.set_xscale),
                               (both["y"].to_numpy(), ax.set_yscale)):
            if _skewed(values) and values.min() > 0:
                setter("log")
            elif _skewed(values) and values.min() == 0:  # zero counts: linear up to 1
                setter("symlog", linthresh=1)
        if n > SCATTER_MAX_POINTS:
            both = both.sample(SCATTER_MAX_POINTS, seed=0)
        ax.scatter(both["x"].to_numpy(), both["y"].to_numpy(), s=4, alpha=0.4,
                   color="#4c72b0", linewidths=0)
        ax.set_xlabel(x_name, fontsize=8)
        ax.set_ylabel(y_name, fontsize=8)
        ax.text(0.02, 0.95, f"n={n}", ha="left", va="top", fontsize=7, transform=ax.transAxes)
    fig.tight_layout()
    return fig
