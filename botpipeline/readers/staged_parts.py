"""Frames staged as Parquet parts in a step's scratch folder, one subfolder per table, for
DuckDB to read back as one table once every part is written (the day-sized readers' pattern:
parse in parallel, then write each table in one query)."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def write_part(staging: Path, name: str, number: int, frame: pl.DataFrame) -> None:
    """Part ``number`` of table ``name``: uncompressed, since it is read back once, locally."""
    folder = staging / name
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(folder / f"part-{number:06d}.parquet", compression="uncompressed")


def parts_glob(staging: Path, name: str) -> str | None:
    """The glob of a table's parts, or None when none was written."""
    folder = staging / name
    return str(folder / "*.parquet") if any(folder.glob("*.parquet")) else None
