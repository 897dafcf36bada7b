"""Avatars and banners drawn locally (no image service at run time), reproducible per account.

Avatar: a 5×5 mirrored identicon from md5(username) in the persona's colour. Banner: a
diagonal band pattern in the same colour family. Same username and persona, same PNG bytes, so
the server's md5 de-duplication makes re-uploads free.
"""

from __future__ import annotations

import hashlib
import io

from botpipeline.lazy import lazy
from botpipeline.transforms.sharkey.personas import COLOURS

Image = lazy("PIL.Image")
ImageDraw = lazy("PIL.ImageDraw")

AVATAR_SIZE, BANNER_SIZE = (400, 400), (1500, 500)


def _colour(persona: str | None, digest: bytes) -> tuple[int, int, int]:
    base = COLOURS.get(persona or "", (120, 120, 120))
    shift = digest[0] % 40 - 20
    return tuple(max(0, min(255, c + shift)) for c in base)


def _canvas(size: tuple[int, int], *colours: tuple[int, int, int]) -> Image.Image:
    """A palette image (colour i is index i): small files, cheap to encode."""
    image = Image.new("P", size, 0)
    image.putpalette([c for colour in colours for c in colour])
    return image


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def avatar_png(username: str, persona: str | None) -> bytes:
    digest = hashlib.md5(f"avatar:{username}".encode()).digest()
    image = _canvas(AVATAR_SIZE, (240, 240, 240), _colour(persona, digest))
    draw, cell = ImageDraw.Draw(image), AVATAR_SIZE[0] // 6
    margin = AVATAR_SIZE[0] // 12
    for row in range(5):
        for col in range(3):
            if digest[1 + row * 3 + col] & 1:
                for c in {col, 4 - col}:
                    x, y = margin + c * cell, margin + row * cell
                    draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=1)
    return _png(image)


def banner_png(username: str, persona: str | None) -> bytes:
    digest = hashlib.md5(f"banner:{username}".encode()).digest()
    colour = _colour(persona, digest)
    light = tuple(min(255, c + 60) for c in colour)
    image = _canvas(BANNER_SIZE, light, colour)
    draw = ImageDraw.Draw(image)
    width, height = BANNER_SIZE
    step = 60 + digest[2] % 60
    for i, x in enumerate(range(-height, width, step)):
        if (digest[3 + i % 12] >> (i % 8)) & 1:
            draw.polygon([(x, height), (x + step // 2, height), (x + step // 2 + height, 0),
                          (x + height, 0)], fill=1)
    return _png(image)
