"""QR codes drawn locally: an SVG data URI that a phone's camera reads as the ``tel:`` link.

The decoder below is deliberately independent of segno: it reads the modules back
from the SVG path, then the format bits, unmasks, and reads the byte-mode payload
(versions 1 and 2, which have one error-correction block: enough for a ``tel:`` URI).
"""

from __future__ import annotations

import re
from urllib.parse import unquote
from xml.etree import ElementTree

import pytest

from django_callauth.web.qr import qr_data_uri

PREFIX = "data:image/svg+xml;charset=utf-8,"
SVG = "{http://www.w3.org/2000/svg}"

# Error-correction level → its two format bits (ISO/IEC 18004, table 12).
EC_FORMAT_BITS = {"L": 1, "M": 0, "Q": 3, "H": 2}
MASKS = [
    lambda r, c: (r + c) % 2 == 0,
    lambda r, c: r % 2 == 0,
    lambda r, c: c % 3 == 0,
    lambda r, c: (r + c) % 3 == 0,
    lambda r, c: (r // 2 + c // 3) % 2 == 0,
    lambda r, c: (r * c) % 2 + (r * c) % 3 == 0,
    lambda r, c: ((r * c) % 2 + (r * c) % 3) % 2 == 0,
    lambda r, c: ((r + c) % 2 + (r * c) % 3) % 2 == 0,
]


def svg_of(uri: str) -> ElementTree.Element:
    assert uri.startswith(PREFIX), uri[:60]
    return ElementTree.fromstring(unquote(uri[len(PREFIX) :]))


def modules(uri: str) -> list[list[bool]]:
    """The dark modules drawn by the SVG path, without the quiet zone."""
    path = svg_of(uri).find(f"{SVG}path")
    assert path is not None
    dark: set[tuple[int, int]] = set()
    x = y = 0.0
    for command, args in re.findall(r"([MmHh])([^MmHh]*)", path.attrib["d"]):
        numbers = [float(n) for n in args.replace(",", " ").split()]
        if command == "M":
            x, y = numbers
        elif command == "m":
            x, y = x + numbers[0], y + numbers[1]
        else:
            end = numbers[0] if command == "H" else x + numbers[0]
            for column in range(int(x), int(end)):
                dark.add((int(y), column))  # lines are drawn through module centres (y + 0.5)
            x = end
    border = min(r for r, _ in dark)
    assert border == min(c for _, c in dark)
    size = max(r for r, _ in dark) - border + 1
    return [[(r + border, c + border) in dark for c in range(size)] for r in range(size)]


def format_bits(ec: str, mask: int) -> int:
    data = EC_FORMAT_BITS[ec] << 3 | mask
    rem = data
    for _ in range(10):
        rem = (rem << 1) ^ ((rem >> 9) * 0x537)
    return (data << 10 | rem) ^ 0x5412


def read_format(m: list[list[bool]]) -> tuple[str, int]:
    positions = [(i, 8) for i in range(6)] + [(7, 8), (8, 8), (8, 7)] + [(8, 14 - i) for i in range(9, 15)]
    bits = sum(1 << i for i, (r, c) in enumerate(positions) if m[r][c])
    for ec in EC_FORMAT_BITS:
        for mask in range(8):
            if format_bits(ec, mask) == bits:
                return ec, mask
    raise AssertionError(f"unreadable format bits {bits:015b}")


def is_function(r: int, c: int, size: int, version: int) -> bool:
    if r == 6 or c == 6:  # timing patterns
        return True
    if (r < 9 and c < 9) or (r < 9 and c >= size - 8) or (r >= size - 8 and c < 9):  # finders, format
        return True
    if version >= 2:  # the one alignment pattern of versions 2–6
        centre = size - 7
        return abs(r - centre) <= 2 and abs(c - centre) <= 2
    return False


def decode(uri: str) -> str:
    m = modules(uri)
    size = len(m)
    version = (size - 17) // 4
    assert size == 17 + 4 * version and version in (1, 2), f"decoder handles versions 1–2, got {size}×{size}"
    _ec, mask = read_format(m)
    bits: list[int] = []
    upward = True
    right = size - 1
    while right > 0:
        if right == 6:
            right -= 1
        rows = range(size - 1, -1, -1) if upward else range(size)
        for r in rows:
            for c in (right, right - 1):
                if not is_function(r, c, size, version):
                    bits.append(int(m[r][c] ^ MASKS[mask](r, c)))
        upward = not upward
        right -= 2

    def take(n: int) -> int:
        value = int("".join(map(str, bits[:n])), 2)
        del bits[:n]
        return value

    assert take(4) == 0b0100, "byte mode"
    length = take(8)
    return bytes(take(8) for _ in range(length)).decode("utf-8")


# -- tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["tel:+79990001234", "tel:+74951234567"])
def test_the_code_reads_back_as_the_text_at_medium_error_correction(text: str) -> None:
    uri = qr_data_uri(text)
    assert decode(uri) == text
    # Phones read codes from screens with glare; "L" would be too fragile.
    assert read_format(modules(uri))[0] in ("M", "Q", "H")


def test_an_svg_data_uri_safe_in_an_html_attribute() -> None:
    uri = qr_data_uri("tel:+79990001234")
    assert not set(uri) & set('"<>& \n')
    svg = svg_of(uri)
    # Nothing that could run or fetch anything.
    assert (svg.tag, [child.tag for child in svg]) == (f"{SVG}svg", [f"{SVG}path"])
    assert "script" not in unquote(uri).lower()
    assert "href" not in unquote(uri).lower()
