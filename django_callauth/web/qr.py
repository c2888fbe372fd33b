"""QR codes drawn locally from a validated number.

The provider's ``url_image`` is never shown: its number may differ from ``auth_phone``
(docs/providers/telefon-ip.rst), and a locally drawn SVG needs no request to a third party.
"""

from __future__ import annotations

import segno


def qr_data_uri(text: str) -> str:
    """An SVG ``data:`` URI of a QR code for ``text`` (a ``tel:`` URI here)."""
    return segno.make(text, error="m", micro=False).svg_data_uri(scale=6, border=2)
