"""The site icon: a quadcopter in white on the pages' navy, drawn here as pixels and wrapped as PNG-in-ICO.

Generated in code (a few hundred bytes, once) so no binary sits in the
repository; `/favicon.svg` is the same drawing for browsers that take SVG.
"""

from __future__ import annotations

import math
import struct
import zlib
from functools import cache

SIZE = 32
NAVY = (11, 31, 58, 255)
WHITE = (255, 255, 255, 255)
CLEAR = (0, 0, 0, 0)

SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
<rect width="32" height="32" rx="6" fill="#0b1f3a"/>
<path d="M9 9L23 23M23 9L9 23" stroke="#fff" stroke-width="2.5"/>
<g fill="none" stroke="#fff" stroke-width="2"><circle cx="8" cy="8" r="4"/><circle cx="24" cy="8" r="4"/>
<circle cx="8" cy="24" r="4"/><circle cx="24" cy="24" r="4"/></g>
<circle cx="16" cy="16" r="3.5" fill="#fff"/>
</svg>
"""


def _pixel(x: float, y: float) -> tuple[int, int, int, int]:
    corner = 6.0  # rounded square
    dx, dy = max(corner - x, 0, x - (SIZE - corner)), max(corner - y, 0, y - (SIZE - corner))
    if dx * dx + dy * dy > corner * corner:
        return CLEAR
    if math.hypot(x - 16, y - 16) <= 3.5:
        return WHITE
    for cx, cy in ((8, 8), (24, 8), (8, 24), (24, 24)):
        if abs(math.hypot(x - cx, y - cy) - 4) <= 1.0:
            return WHITE
    if 9 <= x <= 23 and (abs(x - y) <= 1.3 or abs(x + y - 32) <= 1.3):
        return WHITE
    return NAVY


def _png() -> bytes:
    raw = b"".join(
        b"\x00" + b"".join(bytes(_pixel(x + 0.5, y + 0.5)) for x in range(SIZE)) for y in range(SIZE)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


@cache
def ico() -> bytes:
    """A one-image ICO whose image is a PNG (every current browser reads it)."""
    png = _png()
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", SIZE, SIZE, 0, 0, 1, 32, len(png), 6 + 16) + png
