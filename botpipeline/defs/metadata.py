"""Helpers that turn frames and figures into Dagster metadata."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl


def markdown_preview(frame: pl.DataFrame, rows: int = 10, width: int = 60) -> dg.MetadataValue:
    """A markdown table of the first rows, long strings cut."""
    def text(name: str, dtype: pl.DataType) -> pl.Expr:
        if isinstance(dtype, pl.List):
            return pl.col(name).cast(pl.List(pl.String)).list.join(", ")
        return pl.col(name).cast(pl.String)

    head = frame.head(rows).with_columns(
        text(c, t).str.slice(0, width) for c, t in frame.schema.items())
    with pl.Config(tbl_formatting="MARKDOWN", tbl_hide_column_data_types=True,
                   tbl_hide_dataframe_shape=True, tbl_cols=-1, tbl_rows=rows,
                   fmt_str_lengths=width + 3):
        return dg.MetadataValue.md(str(head))


def table_schema(con: duckdb.DuckDBPyConnection, relation: str) -> dg.TableSchema:
    described = con.execute(f"DESCRIBE {relation}").fetchall()
    return dg.TableSchema(columns=[dg.TableColumn(name=row[0], type=row[1]) for row in described])


def png_metadata(figure, path: Path | None = None) -> dg.MetadataValue:
    """Embed a matplotlib figure as a base64 PNG in markdown (and write it to ``path``)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    data = buffer.getvalue()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    encoded = base64.b64encode(data).decode("ascii")
    return dg.MetadataValue.md(f"![plot](data:image/png;base64,{encoded})")
