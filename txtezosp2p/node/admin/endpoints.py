"""
Where the admin API may listen: a loopback address or a UNIX socket, unless
a public address is asked for explicitly (the API has no authentication).
"""

from __future__ import annotations

import ipaddress


def _split_endpoint(description: str) -> list[str]:
    """Split an endpoint string on unescaped colons."""
    parts = [""]
    escaped = False
    for char in description:
        if escaped:
            parts[-1] += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            parts.append("")
        else:
            parts[-1] += char
    return parts


def is_local_endpoint(description: str) -> bool:
    """Whether an endpoint string binds only a loopback address or a UNIX socket."""
    parts = _split_endpoint(description)
    kind = parts[0].lower()
    if kind == "unix":
        return True
    if kind not in ("tcp", "tcp6", "ssl"):
        return False
    interface = next((p.split("=", 1)[1] for p in parts[1:] if p.startswith("interface=")), "")
    try:
        return ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return False


def check_admin_endpoint(description: str, allow_public: bool = False) -> None:
    """Refuse an endpoint that is not local, unless ``allow_public``."""
    if not allow_public and not is_local_endpoint(description):
        raise ValueError(
            f"the admin API would be reachable from the network on {description!r}: "
            "bind a loopback address (tcp:8732:interface=127.0.0.1) or a UNIX socket, "
            "or ask for a public address explicitly"
        )


__all__ = ["check_admin_endpoint", "is_local_endpoint"]
