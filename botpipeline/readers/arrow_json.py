"""Arrow's JSON reader as a fast path: one call per block of JSON lines, an explicit schema of
only the fields kept (the rest is skipped, not built), no Python per line, the GIL released.

Arrow is strict, which is what a fast path needs: a value of another type than the schema's,
a duplicate key or invalid JSON raises ``NotFast``, and the caller takes its exact path for
that block. It does not check the bytes of skipped fields, so the block's UTF-8 is validated
first, and it skips blank lines, so a block with one is refused too (line numbers would shift).
"""

from __future__ import annotations

import polars as pl

from botpipeline.lazy import lazy

np = lazy("numpy")
pa = lazy("pyarrow")
pa_json = lazy("pyarrow.json")


class NotFast(Exception):
    """Arrow's reader cannot take this block as it is."""


def arrow_type(dtype: pl.DataType) -> pa.DataType:
    """The Arrow type of a polars type (strings, 64-bit integers, booleans, structs, lists)."""
    if isinstance(dtype, pl.Struct):
        return pa.struct([(f.name, arrow_type(f.dtype)) for f in dtype.fields])
    if isinstance(dtype, pl.List):
        return pa.list_(arrow_type(dtype.inner))
    return {pl.String: pa.string(), pl.Int64: pa.int64(), pl.Boolean: pa.bool_()}[
        dtype.base_type()]


def parse_options(fields: dict[str, pl.DataType]) -> pa_json.ParseOptions:
    """Reader options for an explicit schema; fields not named are ignored."""
    schema = pa.schema([(name, arrow_type(dtype)) for name, dtype in fields.items()])
    return pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")


def valid_utf8(payload: bytes) -> bool:
    """Whether the bytes are UTF-8, checked by Arrow's SIMD validator (10x ``bytes.decode``)
    without copying them."""
    offsets = pa.py_buffer(np.array([0, len(payload)], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(payload)]
                              ).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def line_count(payload: bytes) -> int:
    """Lines in the bytes, a last line without its newline included."""
    return payload.count(b"\n") + (0 if payload.endswith(b"\n") or not payload else 1)


def read_lines(payload: bytes, options: pa_json.ParseOptions) -> pa.Table:
    """Every line of ``payload`` as one row, in order; ``NotFast`` where that cannot hold."""
    if not valid_utf8(payload):
        raise NotFast("not UTF-8")
    if payload and not payload.endswith(b"\n"):
        payload += b"\n"
    try:
        table = pa_json.read_json(
            pa.py_buffer(payload), parse_options=options,
            read_options=pa_json.ReadOptions(use_threads=False,
                                             block_size=max(len(payload) + 1, 1 << 20)))
    except (pa.ArrowException, ValueError) as exc:
        raise NotFast(str(exc)) from exc
    if table.num_rows != line_count(payload):
        raise NotFast("blank lines")
    return table
