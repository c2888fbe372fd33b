"""The client's address, as the site's own proxies vouch for it, never as the client claims.

``X-Forwarded-For`` is written by whoever sends the request: trusting it unconfigured would
let one client pose as any number of addresses and walk past the per-address limit. So
``REMOTE_ADDR`` is the default, and a forwarding header counts only when a setting says
the site's own proxies write it.
"""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest

from ..conf import app_settings

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


#: The IPv6 networks counted on top of the /64, narrowest first, by the scope that counts each:
#: a household's delegation (/56) and a site's or a tunnel broker customer's allocation (/48).
IPV6_NETWORKS = {"ipv6_56": 56, "ipv6_48": 48}


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def rate_limit_key(address: str) -> str:
    """The address as limits count it: IPv4 whole, IPv6 by its /64 (one subscriber's network)."""
    ip = _parse(address)
    if ip is None:
        return UNKNOWN
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def address_keys(address: str) -> dict[str, str]:
    """Every network ``address`` is counted in, by scope: ``ip``, and for IPv6 its /56 and /48 too.

    One subscriber of a network that hands out /64s freely holds 256 of them in a /56 and
    65,536 in a /48: counted by /64 alone, one allocation could start as many flows as it
    has networks. An IPv4 address is scarce enough to stand alone.
    """
    keys = {"ip": rate_limit_key(address)}
    ip = _parse(address)
    if isinstance(ip, ipaddress.IPv6Address):
        for scope, prefix in IPV6_NETWORKS.items():
            keys[scope] = str(ipaddress.IPv6Network((ip, prefix), strict=False))
    return keys
