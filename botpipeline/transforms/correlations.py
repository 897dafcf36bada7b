"""Pairwise Pearson and Spearman correlations of a per-account feature frame.

The Danish election study correlated every feature of its user frame (bin size, account age,
follower/following/tweet/listed counts, later disappearance, Botometer scores) with Pearson's r.
Those features are heavily skewed counts, so we report Spearman's rank correlation next to it.

Missing values are deleted pairwise: each pair uses the rows where both features are present,
and ``n`` says how many that was. NaN and infinities count as missing (an infinite value makes
Pearson's r undefined). Booleans are 0/1. A pair with fewer than 3 rows, or where either feature
is constant over the pair's rows, has no correlation (null ``r`` and ``p_value``), not an error.
p-values are two-sided and computed as ``scipy.stats.pearsonr`` / ``spearmanr`` do; r is
computed here with numpy because scipy's per-call overhead dominated on large frames, and each
column is sorted once for the Spearman ranks instead of once per pair.
"""

from __future__ import annotations

import polars as pl

from botpipeline.lazy import lazy

np = lazy("numpy")

METHODS = ("pearson", "spearman")
RESULT_SCHEMA = {"method": pl.String, "feature_a": pl.String, "feature_b": pl.String,
                 "r": pl.Float64, "n": pl.Int64, "p_value": pl.Float64}


def _usable(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean


def _matrix(frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """Rows x columns float matrix with NaN for every missing or non-finite value."""
    as_float = [pl.col(c).cast(pl.Float64) for c in columns]
    cleaned = frame.select([pl.when(e.is_finite()).then(e).alias(c)
                            for e, c in zip(as_float, columns)])
    return cleaned.to_numpy(order="fortran").astype(np.float64, copy=False) if columns \
        else np.empty((frame.height, 0))


def _sorted_groups(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the present values in ascending order, and tie-group ids along them."""
    rows = np.flatnonzero(~np.isnan(values))
    order = rows[np.argsort(values[rows], kind="stable")]
    ordered = values[order]
    groups = np.concatenate(([0], np.cumsum(ordered[1:] != ordered[:-1])))
    return order, groups


def _ranks(order: np.ndarray, groups: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Average ranks of the rows in ``mask`` among themselves, in row order.

    The column is sorted once; each pair only walks that order (linear time), so a pair's
    own deletions do not cost a sort.
    """
    keep = mask[order]
    rows, tied = order[keep], groups[keep]
    starts = np.flatnonzero(np.concatenate(([True], tied[1:] != tied[:-1])))
    counts = np.diff(np.append(starts, rows.size))
    ranks = np.empty(mask.size)
    ranks[rows] = np.repeat(starts + 1 + (counts - 1) / 2, counts)
    return ranks[mask]


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r, scaled first as scipy does so large counts cannot overflow."""
    x = x - x.mean()
    y = y - y.mean()
    x /= np.abs(x).max()
    y /= np.abs(y).max()
    r = float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))
    return max(-1.0, min(1.0, r))


def _p_value(r: float, n: int, method: str) -> float:
    """Two-sided p-value as scipy computes it (beta for Pearson, t for Spearman)."""
    from scipy import stats  # ~1 s to import: only when correlations are computed

    if method == "pearson":
        ab = n / 2 - 1
        return float(2 * stats.beta.sf(abs(r), ab, ab, loc=-1, scale=2))
    if abs(r) >= 1:
        return 0.0
    t = r * np.sqrt((n - 2) / ((r + 1.0) * (1.0 - r)))
    return float(2 * stats.t.sf(abs(t), n - 2))


def correlation_matrices(frame: pl.DataFrame, columns: list[str] | None = None,
                         methods: tuple[str, ...] = METHODS) -> pl.DataFrame:
    """Tidy correlations: one row per method and unordered pair of features (``RESULT_SCHEMA``).

    ``columns`` defaults to every numeric and boolean column, in frame order; pairs follow that
    order (``feature_a`` comes before ``feature_b``), the diagonal is left out. Each pair is
    computed on whole column arrays, not row by row.
    """
    if columns is None:
        columns = [c for c, dtype in frame.schema.items() if _usable(dtype)]
    else:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"no such columns: {missing}")
        wrong = [c for c in columns if not _usable(frame.schema[c])]
        if wrong:
            raise ValueError(f"not numeric or boolean: {wrong}")
        if len(set(columns)) != len(columns):
            raise ValueError(f"repeated columns: {columns}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; use {METHODS}")

    data = _matrix(frame, columns)
    present = ~np.isnan(data)
    varies = [bool(np.nanmin(c) < np.nanmax(c)) if p.sum() >= 3 else False
              for c, p in zip(data.T, present.T)]
    sorted_columns = [_sorted_groups(c) if "spearman" in methods and v else None
                      for c, v in zip(data.T, varies)]
    rows: list[tuple] = []
    for i, a in enumerate(columns):
        for j in range(i + 1, len(columns)):
            both = present[:, i] & present[:, j]
            n = int(both.sum())
            x, y = data[both, i], data[both, j]
            defined = varies[i] and varies[j] and n >= 3 and x.min() < x.max() \
                and y.min() < y.max()
            for method in methods:
                r = p = None
                if defined and method == "pearson":
                    r = _pearson(x, y)
                elif defined:
                    r = _pearson(_ranks(*sorted_columns[i], both),
                                 _ranks(*sorted_columns[j], both))
                if r is not None:
                    p = _p_value(r, n, method)
                rows.append((method, a, columns[j], r, n, p))
    order = {m: k for k, m in enumerate(methods)}
    rows.sort(key=lambda row: order[row[0]])  # stable: pairs keep their order per method
    return pl.DataFrame(rows, schema=RESULT_SCHEMA, orient="row")


def correlation_square(corr: pl.DataFrame, method: str) -> tuple[list[str], np.ndarray]:
    """Feature order and the symmetric r matrix, NaN where r is null.

    The diagonal is 1 for features with at least one defined correlation, NaN for the others
    (a constant column does not correlate with itself either).
    """
    part = corr.filter(pl.col("method") == method)
    features = list(dict.fromkeys([*part["feature_a"], *part["feature_b"]]))
    index = {name: i for i, name in enumerate(features)}
    square = np.full((len(features), len(features)), np.nan)
    for a, b, r in part.select("feature_a", "feature_b", "r").iter_rows():
        value = np.nan if r is None else r
        square[index[a], index[b]] = square[index[b], index[a]] = value
    defined = ~np.isnan(square).all(axis=1)
    square[np.diag_indices_from(square)] = np.where(defined, 1.0, np.nan)
    return features, square
