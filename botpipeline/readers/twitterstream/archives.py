"""Find the per-minute members of a Twitter Stream Grab day and decompress them.

A day folder may hold tar archives (plain or compressed), zip archives, or bare
``.json.bz2`` / ``.json.gz`` / ``.jsonl`` files, with inner paths of any era
(``MM/DD/HH/mm.json.bz2``, ``YYYY/MM/DD/HH/mm.json.bz2``, ``YYYYMMDD/YYYYMMDDHHMMSS.json.gz``).
Nothing here raises on bad input: an unreadable file, archive or member comes back as a
``Problem`` that the caller quarantines, and a damaged member yields whatever decompressed
before the damage.
"""

from __future__ import annotations

import bz2
import io
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

try:  # ISA-L's inflate: about 3x zlib on these members (measured here); zlib otherwise
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - optional speed-up
    _isal_zlib = None
try:  # libbz2-rs (cramjam's pure-Rust backend): about 1.4x libbzip2 here; strict, see below
    import cramjam_pure_rust as _rust
except ImportError:  # pragma: no cover - optional speed-up
    _rust = None

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".zip")
MEMBER_SUFFIXES = (".json.bz2", ".json.gz", ".jsonl.bz2", ".jsonl.gz", ".json", ".jsonl",
                   ".bz2", ".gz")


@dataclass(frozen=True)
class Member:
    """One compressed (or plain) JSON-lines member, still as read from disk."""

    source_file: str  # path of the file relative to the day folder
    member: str  # path inside the archive ("" for a bare file)
    data: bytes


@dataclass(frozen=True)
class Problem:
    """A file or member that could not be read (whole or in part)."""

    source_file: str
    member: str
    scope: str  # "file" | "member"
    reason: str


@dataclass(frozen=True)
class Skipped:
    """A member left out on purpose (dot-file, empty, not JSON)."""

    source_file: str
    member: str
    reason: str


def _is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _is_member_name(name: str) -> bool:
    return name.lower().endswith(MEMBER_SUFFIXES)


def _hidden(path: str) -> bool:
    return any(part.startswith(".") for part in path.split("/") if part)


def day_files(day_dir: Path) -> list[Path]:
    """Input files of one day, in a stable order; dot-files and dot-folders left out."""
    if not day_dir.is_dir():
        return []
    return sorted(p for p in day_dir.rglob("*")
                  if p.is_file() and not _hidden(p.relative_to(day_dir).as_posix()))


def iter_members(day_dir: Path) -> Iterator[Member | Problem | Skipped]:
    """Every member of every input file of a day, in a stable order."""
    for path in day_files(day_dir):
        rel = path.relative_to(day_dir).as_posix()
        name = path.name.lower()
        if name.endswith(".zip"):
            yield from _zip_members(path, rel)
        elif _is_archive(name):
            yield from _tar_members(path, rel)
        elif _is_member_name(name):
            try:
                data = path.read_bytes()
            except OSError as exc:
                yield Problem(rel, "", "file", f"cannot read file: {exc}")
                continue
            if not data:
                yield Skipped(rel, "", "empty file")
            else:
                yield Member(rel, "", data)
        else:
            yield Problem(rel, "", "file", "unsupported file type (expected an archive or "
                          ".json.bz2/.json.gz/.jsonl)")


def _classify_member(rel: str, name: str, size: int) -> Skipped | None:
    base = name.rsplit("/", 1)[-1]
    if _hidden(name):
        return Skipped(rel, name, "dot-file")
    if size == 0:
        return Skipped(rel, name, "empty member")
    if not _is_member_name(base):
        return Skipped(rel, name, "not a JSON member")
    return None


def _tar_members(path: Path, rel: str) -> Iterator[Member | Problem | Skipped]:
    try:
        tar = tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        yield Problem(rel, "", "file", f"unreadable tar archive: {exc}")
        return
    with tar:
        last = ""
        while True:
            try:
                info = tar.next()
            except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                yield Problem(rel, last, "file", f"tar archive damaged after member {last!r}: "
                              f"{exc}; later members lost")
                return
            if info is None:
                if not _has_end_marker(path, tar):
                    yield Problem(rel, last, "file", f"tar archive truncated after member "
                                  f"{last!r} (no end-of-archive marker); later members lost")
                return
            last = info.name
            if not info.isfile():
                continue
            skipped = _classify_member(rel, info.name, info.size)
            if skipped:
                yield skipped
                continue
            try:
                handle = tar.extractfile(info)
                data = handle.read() if handle else b""
            except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                partial = _partial_member(path, tar, info)
                if partial:  # archive cut inside this member: keep what is there
                    yield Member(rel, info.name, partial)
                yield Problem(rel, info.name, "file", f"tar archive truncated inside member "
                              f"{info.name!r} ({len(partial)} of {info.size} bytes): {exc}")
                return
            yield Member(rel, info.name, data)


def _partial_member(path: Path, tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    """The bytes of a member that a cut plain tar still holds (none for compressed tars)."""
    if not isinstance(tar.fileobj, io.BufferedReader):
        return b""
    with open(path, "rb") as handle:
        handle.seek(info.offset_data)
        return handle.read(info.size)


def _has_end_marker(path: Path, tar: tarfile.TarFile) -> bool:
    """tarfile stops quietly at a cut header; a whole archive ends in two zero blocks."""
    if not isinstance(tar.fileobj, io.BufferedReader):
        return True  # compressed tar: a cut stream raises EOFError instead
    with open(path, "rb") as handle:
        handle.seek(tar.offset)
        tail = handle.read(2 * tarfile.BLOCKSIZE)
    return len(tail) == 2 * tarfile.BLOCKSIZE and not tail.strip(b"\x00")


def _zip_members(path: Path, rel: str) -> Iterator[Member | Problem | Skipped]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Problem(rel, "", "file", f"unreadable zip archive: {exc}")
        return
    with archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if info.is_dir():
                continue
            skipped = _classify_member(rel, info.filename, info.file_size)
            if skipped:
                yield skipped
                continue
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
                yield Problem(rel, info.filename, "member", f"cannot read zip member: {exc}")
                continue
            yield Member(rel, info.filename, data)


# ----------------------------------------------------------------------------- decompression
@dataclass(frozen=True)
class Decompressed:
    payload: bytes
    codec: str
    error: str | None  # set when the member was damaged; payload holds what came before


def codec_of(data: bytes, name: str) -> str:
    """Detect the codec by magic bytes (names lie), falling back to the suffix."""
    if data[:3] == b"BZh":
        return "bz2"
    if data[:2] == b"\x1f\x8b":
        return "gzip"
    lowered = name.lower()
    if lowered.endswith(".bz2"):
        return "bz2"
    if lowered.endswith(".gz"):
        return "gzip"
    return "plain"


def decompress(data: bytes, name: str) -> Decompressed:
    """Decompress a member whole, with the fastest decoder installed.

    bz2 goes through libbz2-rs (cramjam-pure-rust) when installed: measured here on the
    generated day's members, 57 MB/s of output per core against 41 for Python's ``bz2``
    (libbzip2); indexed_bzip2 1.7 on one thread was slower than both (its speed comes from
    several threads on one large file; members are spread over the cores instead). gzip goes
    through ISA-L (isal, ~2x zlib-rs and ~2.3x zlib here). The fast decoders are strict: they
    refuse any damage, zero padding or trailing bytes as a whole, so such a member is decoded
    again with the standard library, which keeps what came before the damage and words the
    reason the same way on every machine."""
    codec = codec_of(data, name)
    payload, error = None, None
    if codec == "bz2":
        if _rust is not None and data:
            try:
                payload = bytes(_rust.bzip2.decompress(data))
            except _rust.DecompressionError:
                payload = None
        if payload is None:
            payload, error = _decompress_streams(data, bz2.BZ2Decompressor, "bz2")
    elif codec == "gzip":
        if _isal_zlib is not None:
            try:
                payload, error = _decompress_streams(
                    data, lambda: _isal_zlib.decompressobj(47), "gzip")
            except _isal_zlib.error:
                payload = None
        if payload is None or error is not None:
            payload, error = _decompress_streams(data, lambda: zlib.decompressobj(47), "gzip")
    else:
        payload = data
    return Decompressed(payload, codec, error)


def decompressor() -> str:
    """Names of the decompressors in use, for reports."""
    return ("bz2: " + ("libbz2-rs (cramjam-pure-rust)" if _rust is not None
                       else "Python bz2 (libbzip2)")
            + "; gzip: " + ("isal (ISA-L)" if _isal_zlib is not None else "Python zlib"))


def _decompress_streams(data: bytes, make, label: str) -> tuple[bytes, str | None]:
    """Decompress concatenated streams (multi-stream bz2, multi-member gzip).

    On damage, return everything decoded before it and the reason.
    """
    out: list[bytes] = []
    rest = data
    while rest:
        decoder = make()
        try:
            out.append(decoder.decompress(rest))
        except (OSError, EOFError, zlib.error) as exc:
            salvaged, _ = _salvage(rest, make)
            out.append(salvaged)
            return b"".join(out), f"corrupt {label} data: {exc}"
        if not decoder.eof:
            return b"".join(out), f"truncated {label} stream (ends before its end-of-stream marker)"
        rest = decoder.unused_data
        if rest and not rest.strip(b"\x00"):  # zero padding after the last stream
            break
    return b"".join(out), None


def _salvage(data: bytes, make, chunk: int = 1 << 16) -> tuple[bytes, str | None]:
    """Feed a damaged stream in small pieces to keep what decodes before the damage."""
    decoder = make()
    out: list[bytes] = []
    for start in range(0, len(data), chunk):
        try:
            out.append(decoder.decompress(data[start:start + chunk]))
        except (OSError, EOFError, zlib.error) as exc:
            return b"".join(out), str(exc)
        if decoder.eof:
            break
    return b"".join(out), None
