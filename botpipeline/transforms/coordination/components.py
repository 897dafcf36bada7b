"""Connected components of an undirected edge list, with scipy's sparse graph routines."""

from __future__ import annotations

import polars as pl

from botpipeline.lazy import lazy

np = lazy("numpy")


def component_labels(edges: pl.DataFrame) -> pl.DataFrame:
    """``edges`` has string columns a, b. Returns node, label for every node that appears in
    an edge; the label is the smallest node id of its component, so it is stable across runs."""
    if edges.height == 0:
        return pl.DataFrame(schema={"node": pl.String, "label": pl.String})
    nodes = pl.concat([edges["a"], edges["b"]]).unique().sort()
    index = pl.DataFrame({"node": nodes, "i": np.arange(nodes.len(), dtype=np.int64)})
    coded = (edges.join(index.rename({"node": "a", "i": "ia"}), on="a")
                  .join(index.rename({"node": "b", "i": "ib"}), on="b"))
    n = nodes.len()
    from scipy.sparse import coo_matrix  # deferred: scipy is slow to import
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(coded.height, dtype=np.int8),
                        (coded["ia"].to_numpy(), coded["ib"].to_numpy())), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    labelled = index.with_columns(pl.Series("component", component))
    first = labelled.group_by("component").agg(pl.col("node").min().alias("label"))
    return labelled.join(first, on="component").select("node", "label")
