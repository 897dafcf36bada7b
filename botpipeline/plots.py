"""Figures shown in asset metadata. Pure matplotlib, no Dagster."""

from __future__ import annotations

import polars as pl


class _Pyplot:
    """matplotlib.pyplot (Agg backend), imported on first use: importing the code location
    must not pay for matplotlib (~0.4 s) when no figure is drawn."""

    def __getattr__(self, name: str):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot

        return getattr(matplotlib.pyplot, name)


plt = _Pyplot()


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


def thread_sizes(sizes: list[int], title: str):
    """Histogram of posts per thread on log-spaced bins (most threads are tiny)."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 3))
    top = max(sizes) if sizes else 1
    bins = np.unique(np.logspace(0, np.log10(top + 1), 30).astype(int))
    ax.hist(sizes, bins=bins if len(bins) > 1 else 1, color="#4c72b0")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("posts in thread")
    ax.set_ylabel("threads")
    ax.set_title(title)
    return fig


def score_distribution(scores: list[float], threshold: float, title: str,
                       value_range: tuple[float, float] = (0, 23), xlabel: str = "total score"):
    """Histogram of scores (default: the 13-signal total) with the flag threshold marked."""
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(scores, bins=46, range=value_range, color="#4c72b0")
    ax.axvline(threshold, color="#c44e52", linestyle="--", label=f"flag at {threshold:g}")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accounts")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def signal_contributions(totals: dict[str, float], title: str):
    """Horizontal bars: how many points each signal contributed over all accounts."""
    fig, ax = plt.subplots(figsize=(6, 4))
    names = sorted(totals, key=totals.get)
    ax.barh(names, [totals[n] for n in names], color="#55a868")
    ax.set_xlabel("points summed over accounts")
    ax.set_title(title)
    return fig


def flagged_share(dates: list, shares: list[float]):
    """Share of scored accounts flagged, per collection date."""
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(dates, shares, marker="o")
    ax.set_ylabel("flagged share")
    ax.set_ylim(0, max([0.1, *shares]) * 1.1)
    ax.set_title("flagged accounts per collection date")
    fig.autofmt_xdate()
    return fig


def bin_sizes(bins: pl.DataFrame, title: str):
    """Accounts per bin size (log-log), exact and near-identical, per action."""
    fig, ax = plt.subplots(figsize=(6, 3))
    for action in sorted(bins["action"].unique().to_list()):
        part = bins.filter(pl.col("action") == action)
        for column, style in (("bin_size", "o"), ("near_bin_size", "x")):
            counts = part.group_by(column).len().sort(column)
            ax.plot(counts[column], counts["len"], style, label=f"{action}, "
                    f"{'exact' if column == 'bin_size' else 'near-identical'}", alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("bin size (accounts sharing the set)")
    ax.set_ylabel("accounts")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:  # a day without bins has nothing to label
        ax.legend(fontsize=7)
    return fig


def _component_grid_layout(graph) -> dict:
    """Spring layout per connected component, the components on a grid (largest first).

    networkx lays out graphs of 500 nodes or more with its sparse solver, a Python loop over
    nodes (7 s for 1,000 members of 51 groups); groups are small, so each is laid out alone
    with the dense solver (milliseconds) and placed in its own cell."""
    import math

    import networkx as nx

    components = sorted(nx.connected_components(graph), key=lambda c: (-len(c), min(c)))
    columns = math.ceil(math.sqrt(len(components)))
    layout = {}
    for number, members in enumerate(components):
        row, column = divmod(number, columns)
        placed = nx.spring_layout(graph.subgraph(members), seed=7, weight=None, scale=0.4,
                                  center=(column, -row))
        layout.update(placed)
    return layout


def coordination_network(edges: pl.DataFrame, groups: pl.DataFrame, title: str):
    """The significant co-action edges among group members, one colour per group."""
    import networkx as nx

    fig, ax = plt.subplots(figsize=(7, 6))
    graph = nx.Graph()
    members = dict(groups.select("actor", "group_id").iter_rows())
    inside = edges.filter(pl.col("actor_a").is_in(groups["actor"].implode())
                          & pl.col("actor_b").is_in(groups["actor"].implode()))
    graph.add_weighted_edges_from(inside.select("actor_a", "actor_b", "weight").iter_rows())
    if graph.number_of_nodes():
        layout = _component_grid_layout(graph)
        palette = plt.get_cmap("tab20")
        order = {g: i for i, g in enumerate(sorted(set(members.values())))}
        nx.draw_networkx_edges(graph, layout, ax=ax, alpha=0.2, width=0.5)
        nx.draw_networkx_nodes(graph, layout, ax=ax, node_size=25,
                               node_color=[palette(order[members[n]] % 20) for n in graph])
    ax.set_title(title)
    ax.set_axis_off()
    return fig


def scores_by_label(frame: pl.DataFrame, score: str, threshold: float, title: str):
    """Box plot of ``score`` per label (harmful labels in red), the flag threshold marked."""
    labels = (frame.group_by("label").agg(pl.col("positive").first(), pl.col(score).median())
              .sort(["positive", score], descending=[True, True]))
    fig, ax = plt.subplots(figsize=(7, 0.35 * labels.height + 1.5))
    data = [frame.filter(pl.col("label") == name)[score].to_list() for name in labels["label"]]
    parts = ax.boxplot(data, orientation="horizontal", patch_artist=True,
                       tick_labels=labels["label"].to_list())
    for patch, positive in zip(parts["boxes"], labels["positive"]):
        patch.set_facecolor("#c44e52" if positive else "#4c72b0")
    ax.axvline(threshold, color="black", linestyle="--", label=f"flag at {threshold:g}")
    ax.set_xlabel(score)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def publish_timeline(timeline: list[tuple[float, str]], bound: float):
    """Objects published over time, one step line per kind, the rate-limit bound marked."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    by_kind: dict[str, list[float]] = {}
    for t, kind in timeline:
        by_kind.setdefault(kind, []).append(t)
    for kind, times in sorted(by_kind.items()):
        ax.step(times, range(1, len(times) + 1), where="post", label=kind)
    if bound:
        ax.axvline(bound, color="black", linestyle="--", label="rate-limit bound")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("objects published")
    ax.legend(fontsize=7)
    ax.set_title("publish timeline")
    return fig


def roc_and_pr_curves(curves: dict[str, tuple], title: str):
    """ROC and precision-recall curves side by side; ``curves``: name -> (truth, score)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig, (roc, pr) = plt.subplots(1, 2, figsize=(10, 4))
    for name, (truth, score) in curves.items():
        if truth.all() or not truth.any():
            continue
        fpr, tpr, _ = roc_curve(truth, score)
        roc.plot(fpr, tpr, label=name)
        precision, recall, _ = precision_recall_curve(truth, score)
        pr.plot(recall, precision, label=name)
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc.set_xlabel("false positive rate")
    roc.set_ylabel("true positive rate")
    roc.set_title("ROC")
    pr.set_xlabel("recall")
    pr.set_ylabel("precision")
    pr.set_title("precision-recall")
    roc.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def calibration_plot(predicted: list[float], observed: list[float], title: str):
    """Reliability diagram: mean predicted probability against the observed bot share."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    ax.plot(predicted, observed, marker="o", label="out-of-fold")
    ax.set_xlabel("predicted bot probability")
    ax.set_ylabel("observed share of bots")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def feature_importance(importance: dict[str, float], title: str, top: int = 20):
    items = list(importance.items())[:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(items) + 1.2))
    ax.barh([name for name, _ in items], [value for _, value in items], color="#4c72b0")
    ax.set_xlabel("mean decrease in impurity")
    ax.set_title(title)
    fig.tight_layout()
    return fig
