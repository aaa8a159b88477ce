"""What a run's tasks may use besides allowed Python modules: programs, container images,
network addresses, environment variables, and bounds on what tasks send back.

A spec is untrusted; the user (``podium.toml``, command-line flags, or the library caller)
grants a ``Policy``. Defaults deny: no program or image may run, HTTP tasks reach only globally routable
addresses, no environment variable may be read by a spec.

Invariants: a ``Policy`` is frozen plain data that round-trips through JSON (it travels to
worker processes with the registry snapshot); ``widen`` only ever adds permissions to lists;
an address is judged after DNS resolution, and addresses embedding an IPv4 address (mapped,
6to4, Teredo, NAT64) are judged by the address they embed. This module imports nothing of ours.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Allows every program (``allow_programs = ["*"]``): the spec then chooses what runs.
ANY = "*"
REDIRECTS = ("same-host", "any", "none")
DEFAULT_HTTP_TIMEOUT = 60.0
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024
DEFAULT_MAX_FANOUT = 1_000_000
#: Cloud instance metadata services: refused unless listed exactly (a CIDR does not count).
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
#: Environment variables that make any program load code chosen by whoever sets them.
LOADER_ENV_PREFIXES = ("LD_", "DYLD_")
LOADER_ENV = frozenset({"GCONV_PATH", "HOSTALIASES", "MALLOC_CHECK_", "RES_OPTIONS"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class Policy:
    """Permissions and bounds granted by the user. Lists hold exact names or patterns:
    ``programs`` argv[0] as written (``tar``, ``/usr/bin/tar``) or ``*``; ``hosts`` host names
    (``api.internal``, ``*.corp.example``), IP addresses or networks (``10.0.0.0/8``) that may
    be reached although not public; ``env`` variable names or ``PREFIX_*`` patterns; ``images``
    container images (see ``podium.model.container.image_allowed`` for the entry forms)."""

    programs: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    http_redirects: str = "same-host"
    http_timeout: float = DEFAULT_HTTP_TIMEOUT
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    max_fanout: int = DEFAULT_MAX_FANOUT
    http_breaker_failures: int = 5  #: calls to one origin failing in a row that open its breaker
    http_breaker_cooldown: float = 30.0  #: seconds an open breaker refuses calls (doubling)

    def widen(
        self, programs: Any = (), hosts: Any = (), env: Any = (), images: Any = (), **settings: Any
    ) -> Policy:
        """This policy with more names allowed and the given settings replaced."""
        return replace(
            self,
            programs=_union(self.programs, programs),
            hosts=_union(self.hosts, hosts),
            env=_union(self.env, env),
            images=_union(self.images, images),
            **settings,
        )

    def merge(self, other: Policy) -> Policy:
        """Both policies' names; ``other``'s settings."""
        scalars = {f.name: getattr(other, f.name) for f in fields(self) if f.name not in _LISTS}
        return self.widen(other.programs, other.hosts, other.env, other.images, **scalars)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Policy:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {k: tuple(v) if k in _LISTS else v for k, v in data.items() if k in known}
        return cls(**kwargs)

    # -- programs and environment ---------------------------------------------------------------
    def program_allowed(self, program: str) -> bool:
        return ANY in self.programs or program in self.programs

    def env_allowed(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.env)

    # -- network --------------------------------------------------------------------------------
    def host_listed(self, host: str) -> bool:
        h = host.lower().rstrip(".")
        for entry in self.hosts:
            e = entry.lower().rstrip(".")
            if h == e or (e.startswith("*.") and h.endswith(e[1:])):
                return True
        return False

    def address_refusal(self, host: str, addr: IP) -> str | None:
        """Why ``addr`` (what ``host`` resolved to) may not be reached, or None if it may."""
        if self.host_listed(host) or self.host_listed(str(addr)):
            return None
        if addr in METADATA:
            return "a cloud metadata address"
        for entry in self.hosts:
            net = _network(entry)
            if net is not None and net.version == addr.version and addr in net:
                return None
        return kind_of_address(addr)

    def literal_refusal(self, host: str) -> str | None:
        """At validation (no DNS): why a host written as an IP address or ``localhost`` may not
        be reached; other names are judged at run time, after resolution."""
        name = host.lower().rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            return None if self.host_listed(host) else "loopback (localhost)"
        try:
            addr = ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            return None
        return self.address_refusal(host, addr)


_LISTS = ("programs", "hosts", "env", "images")


def kind_of_address(addr: IP) -> str | None:
    """None for a globally routable unicast address, else what kind of address it is."""
    embedded = _embedded_v4(addr)
    if embedded is not None:
        why = kind_of_address(embedded)
        return None if why is None else f"{why} (embedded in {addr})"
    for test, name in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_unspecified", "unspecified"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(addr, test):
            return name
    if not addr.is_global:
        return "not publicly routable"
    return None


def _embedded_v4(addr: IP) -> ipaddress.IPv4Address | None:
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None


def host_entry_problem(entry: str) -> str | None:
    """Why ``entry`` is not a host name, ``*.suffix``, IP address or network, or None."""
    if not entry or entry != entry.strip():
        return "expected a host name, IP address or network without spaces"
    if _network(entry) is not None:
        return None
    name = entry[2:] if entry.startswith("*.") else entry
    labels = name.rstrip(".").split(".")
    if all(lab and len(lab) <= 63 and all(c.isalnum() or c == "-" for c in lab) for lab in labels):
        return None
    return f"{entry!r} is not a host name, *.domain, IP address or network"


def program_refusal(program: str) -> str:
    return (
        f"program {program!r} is not allowed: allow it with --allow-program {program} "
        "or allow_programs in podium.toml"
    )


def env_key_problem(key: object) -> str | None:
    """Why ``key`` cannot be the name of an environment variable a task sets, or None."""
    if not isinstance(key, str) or not key:
        return "an environment variable needs a non-empty name"
    if "=" in key or "\x00" in key:
        return f"environment variable name {key!r} may not contain '=' or a NUL byte"
    if key.startswith(LOADER_ENV_PREFIXES) or key in LOADER_ENV:
        return f"environment variable {key!r} changes what code a program loads: it cannot be set by a spec"
    return None


def _union(old: tuple[str, ...], new: Any) -> tuple[str, ...]:
    if isinstance(new, str):
        new = (new,)
    return tuple(dict.fromkeys((*old, *(str(x) for x in new))))
