"""The client's address, as the site's own proxies vouch for it, never as the client claims.

``X-Forwarded-For`` is written by whoever sends the request: trusting it unconfigured would
let one client pose as any number of addresses and walk past the per-address limit. So
``REMOTE_ADDR`` is the default, and a forwarding header counts only when a setting says
the site's own proxies write it.
"""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest

from .conf import app_settings

#: Where no usable address is found, every such request shares one bucket: strict, not open.
UNKNOWN = "unknown"


def client_ip(request: HttpRequest) -> str:
    """The client's address as text: from the trusted header, the trusted hop, or the socket."""
    header = app_settings.TRUSTED_CLIENT_IP_HEADER
    if header:
        value = request.headers.get(header, "")
        if value:
            return value.strip()
    proxies = app_settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
        # Each of our proxies appends the address it saw: the entry added by the outermost
        # one, ``proxies`` from the right, is the client. Entries left of it are the client's word.
        if len(hops) >= proxies:
            return hops[-proxies]
    return str(request.META.get("REMOTE_ADDR") or "")


def rate_limit_key(address: str) -> str:
    """The address as limits count it: IPv4 whole, IPv6 by its /64 (one subscriber's network)."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return UNKNOWN
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
