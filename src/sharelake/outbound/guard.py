"""Which addresses a connection made for a user may reach.

A user's URL may name any host. Resolved, it must not land on this machine, the private network it sits
in, or a cloud's metadata service — the classic server-side request forgery — unless the operator listed
it in `SHARELAKE_ROBOT_HTTP_ALLOW`: hosts (`broker.lan`), `host:port` (`10.0.0.5:8080`) or CIDRs
(`10.1.0.0/16`). The check is made on the addresses the name resolves to, and the connection is then
made to the checked address itself, so a name that resolves differently a moment later (DNS rebinding)
changes nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Beyond what `ipaddress` calls private/loopback/link-local/reserved/multicast: carrier-grade NAT (one
# cloud's metadata service lives there) and the IPv6 form AWS gives its metadata service.
_ALSO_REFUSED: tuple[Network, ...] = (
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


class Refused(Exception):
    """The connection may not be made; the message says why (and how an operator can allow it)."""


@dataclass(frozen=True, slots=True)
class Allow:
    """The operator's exceptions to the rule."""

    hosts: frozenset[str] = frozenset()  # lower-case names or addresses, any port
    host_ports: frozenset[tuple[str, int]] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Allow:
        """`SHARELAKE_ROBOT_HTTP_ALLOW`: comma-separated hosts, `host:port` or CIDRs."""
        hosts: set[str] = set()
        host_ports: set[tuple[str, int]] = set()
        networks: list[Network] = []
        for raw in text.split(","):
            item = raw.strip().lower()
            if not item:
                continue
            if "/" in item:
                try:
                    networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    raise ValueError(f"{item!r} is not a CIDR (e.g. 10.1.0.0/16)") from None
                continue
            host, port = _split_host_port(item)
            if port is None:
                hosts.add(host)
            else:
                host_ports.add((host, port))
        return cls(frozenset(hosts), frozenset(host_ports), tuple(networks))

    def permits(self, host: str, port: int, address: Address | None = None) -> bool:
        host = host.lower().strip("[]")
        if host in self.hosts or (host, port) in self.host_ports:
            return True
        if address is None:
            return False
        text = str(address)
        if text in self.hosts or (text, port) in self.host_ports:
            return True
        return any(address in network for network in self.networks if network.version == address.version)


def _split_host_port(item: str) -> tuple[str, int | None]:
    if item.startswith("["):  # [::1]:8080
        host, _, rest = item[1:].partition("]")
        return host, _port(rest[1:]) if rest.startswith(":") else None
    if item.count(":") == 1:
        host, _, port = item.partition(":")
        return host, _port(port)
    return item, None  # a name, an IPv4 address, or a bare IPv6 address


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{text!r} is not a port")
    return int(text)


def forbidden(address: Address) -> str | None:
    """Why `address` is refused by default, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return forbidden(address.ipv4_mapped)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata services live there)"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "not a unicast Internet address"
    if address.is_private or any(address in n for n in _ALSO_REFUSED if n.version == address.version):
        return "a private address"
    return None


def check_address(host: str, port: int, address: Address, allow: Allow) -> None:
    reason = forbidden(address)
    if reason is not None and not allow.permits(host, port, address):
        raise Refused(
            f"{host}:{port} resolves to {address}, {reason}; an operator can allow it in "
            "SHARELAKE_ROBOT_HTTP_ALLOW"
        )


def resolve_checked(host: str, port: int, allow: Allow) -> Address:
    """The address to connect to for `host:port`: every address the name resolves to must pass (a name
    with one private address among public ones is refused), and the first is used."""
    bare = host.strip("[]")
    try:
        literal: Address | None = ipaddress.ip_address(bare)
    except ValueError:
        literal = None
    if literal is not None:
        check_address(host, port, literal, allow)
        return literal
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"{host} does not resolve: {exc}") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise Refused(f"{host} does not resolve")
    for address in addresses:
        check_address(host, port, address, allow)
    return addresses[0]
