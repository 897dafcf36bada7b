"""The files of a twarc2 day, read as blocks of whole lines, a few MB at a time.

A ``.jsonl.gz`` file is inflated as a stream through ISA-L (``isal``) when installed, else
zlib: a file of any size never sits whole in memory. A damaged or cut file yields the lines
that decoded before the damage, then a ``FileDamage`` that says why, with the unfinished line
at the damage, to be quarantined.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

try:  # ISA-L's inflate: about 3x the standard library's (measured here)
    from isal import isal_zlib as _isal_zlib
    _ERRORS: tuple = (zlib.error, _isal_zlib.error)
except ImportError:  # pragma: no cover - optional speed-up
    _isal_zlib = None
    _ERRORS = (zlib.error,)

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")
BLOCK_BYTES = 8 << 20


@dataclass(frozen=True)
class Block:
    """Whole lines of one file: ``data`` starts at line ``first_line`` (1-based)."""

    source_file: str
    first_line: int
    data: bytes


@dataclass(frozen=True)
class FileDamage:
    """A file that could not be read to its end (or at all)."""

    source_file: str
    reason: str
    cut_line: int | None = None  # the number of the unfinished line at the damage, if any
    cut_raw: bytes | None = None  # and its bytes


def day_files(day_dir: Path) -> list[tuple[Path, str]]:
    """The day's input files in a stable order, with their names relative to the folder."""
    if not day_dir.is_dir():
        return []
    files = sorted(p for p in day_dir.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and p.name.endswith(SUFFIXES))
    return [(p, p.relative_to(day_dir).as_posix()) for p in files]


def _decoder():
    return (_isal_zlib or zlib).decompressobj(47)


class _Damaged(Exception):
    pass


def _decoded(handle, gz: bool) -> Iterator[bytes]:
    """The file's bytes, inflated when gzip (every member), in pieces; raises ``_Damaged`` at
    the damage, after every byte decoded before it. Compressed input goes in 64 kB pieces, so
    what a damaged piece held before the damage is the most that is lost."""
    if not gz:
        while piece := handle.read(1 << 20):
            yield piece
        return
    decoder, fed = _decoder(), False
    while piece := handle.read(1 << 16):
        while piece:
            try:
                out = decoder.decompress(piece)
            except _ERRORS as exc:
                raise _Damaged(f"corrupt gzip data: {exc}") from None
            fed = True
            if out:
                yield out
            piece = decoder.unused_data if decoder.eof else b""
            if decoder.eof:
                if not piece.strip(b"\x00"):  # zero padding after the last member
                    piece = b""
                else:
                    decoder, fed = _decoder(), False
    if fed and not decoder.eof:
        raise _Damaged("truncated gzip stream (ends before its end-of-stream marker)")


def read_blocks(path: Path, name: str, block_bytes: int = BLOCK_BYTES
                ) -> Iterator[Block | FileDamage]:
    """Blocks of whole lines of one file; a ``FileDamage`` last if it could not be read whole."""
    line, rest, pieces, size = 1, b"", [], 0

    def block() -> Block | None:
        nonlocal line, rest, pieces, size
        data = rest + b"".join(pieces)
        pieces, size = [], 0
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if not cut:
            return None
        whole = Block(name, line, data[:cut])
        line += whole.data.count(b"\n")
        return whole

    try:
        with open(path, "rb") as handle:
            for piece in _decoded(handle, path.name.endswith(".gz")):
                pieces.append(piece)
                size += len(piece)
                if size >= block_bytes and (whole := block()):
                    yield whole
    except (OSError, _Damaged) as exc:
        if whole := block():
            yield whole
        cut = rest.strip()
        yield FileDamage(name, f"unreadable file: {exc}", line if cut else None,
                         rest if cut else None)
        return
    if whole := block():
        yield whole
    if rest:  # a last line without its newline is still a line
        yield Block(name, line, rest)
