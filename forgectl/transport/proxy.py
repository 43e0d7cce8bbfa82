"""Whether a proxy from the environment applies to a URL.

websockets' client and httpx both honour ``*_PROXY`` / ``NO_PROXY``; forgectl's
own transports (the sans-I/O WebSocket, the standard library's HTTP) do not
speak proxies, so a URL a proxy applies to goes to those libraries instead.
"""

from __future__ import annotations

import os
import sys


def proxy_applies(url: str) -> bool:
    """Whether a proxy from the environment (``*_proxy``, minus ``no_proxy``)
    applies to ``url``, decided exactly as websockets' client decides it."""
    if sys.platform.startswith("linux") and not any(
        value and name.lower().endswith("_proxy") and name.lower() != "no_proxy"
        for name, value in os.environ.items()
    ):
        # No proxy variable at all (Linux has no system proxy settings): skip
        # websockets' exact check, which imports urllib.request (10-20 ms).
        return False
    from websockets.proxy import get_proxy
    from websockets.uri import parse_uri

    try:
        return get_proxy(parse_uri(url)) is not None
    except Exception:  # a URL websockets rejects: its client reports it
        return True
