"""Typed data of the reserved value types, to and from the Handle binary encoding and JSON. Pure.

HS_ADMIN (an admin grant), HS_VLIST (an admin group), HS_SITE (where a service lives) and HS_PUBKEY
(a public key). JSON shapes follow Handle.Net's GsonUtility (handle-http-api.md §3); binary layouts
follow handle-wire.md §1.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from .encoding import DecodeError, Reader, Writer
from .errors import InvalidValue
from .model import ValueRef, integer_text
from .permissions import AdminGrant, AdminPermission
from .pubkeys import jwk_to_pubkey, pubkey_to_jwk

ADMIN = "HS_ADMIN"
VLIST = "HS_VLIST"
SITE_TYPES = frozenset({"HS_SITE", "HS_SITE.PREFIX", "HS_NA_DELEGATE"})
PUBKEY = "HS_PUBKEY"
SECKEY = "HS_SECKEY"
SIGNATURE = "HS_SIGNATURE"
CERT = "HS_CERT"


def _require(obj: Any, key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise InvalidValue(f"{what} needs a {key!r} member")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InvalidValue(f"{what} member {key!r} has the wrong type: {value!r}")
    return value


def _flag(obj: dict[str, Any], key: str, default: bool, what: str) -> bool:
    """A JSON boolean: ``"false"`` is refused rather than read as true."""
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise InvalidValue(f"{what} must be true or false, not {value!r}")
    return value


def _string(obj: dict[str, Any], key: str, default: str, what: str) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str):
        raise InvalidValue(f"{what} must be a string, not {value!r}")
    return value


INT4 = (0, 2**31 - 1)
UINT2 = (0, 2**16 - 1)
BYTE = (0, 255)


def _index(data: Any, what: str, bounds: tuple[int, int] = INT4) -> int:
    """A number given as an int or a numeric string (pyhandle sends ``"200"``), within ``bounds``."""
    number = None
    if isinstance(data, int) and not isinstance(data, bool):
        number = data
    elif isinstance(data, str):
        number = integer_text(data)
    if number is None:
        raise InvalidValue(f"{what} must be a number, not {data!r}")
    if not bounds[0] <= number <= bounds[1]:
        raise InvalidValue(f"{what} {number} is outside {bounds[0]}..{bounds[1]}")
    return number


# --- HS_ADMIN ------------------------------------------------------------------------------------


def admin_to_bytes(grant: AdminGrant) -> bytes:
    w = Writer()
    if grant.legacy:
        w.int4(int(grant.permissions))
    else:
        w.uint2(int(grant.permissions))
    return w.text(grant.ref.handle).int4(grant.ref.index).getvalue()


def admin_from_bytes(data: bytes) -> AdminGrant:
    """An HS_ADMIN value; DecodeError for bits beyond the twelve defined (they would not survive JSON)."""
    try:
        r = Reader(data)
        perms = r.uint2()
        handle = r.text()
        index = r.int4()
        r.end()
        legacy = False
    except DecodeError:
        r = Reader(data)
        perms = r.int4()
        handle = r.text()
        index = r.int4()
        r.end()
        legacy = True
    if perms & ~0x0FFF:
        raise DecodeError(f"HS_ADMIN permission bits {perms:#x} go beyond the twelve defined")
    return AdminGrant(ValueRef(index, handle), AdminPermission(perms), legacy=legacy)


def admin_from_json(data: Any) -> AdminGrant:
    handle = _require(data, "handle", str, "admin value")
    index = _index(data.get("index", 0), "admin value index")
    perms = AdminPermission.from_json(data.get("permissions", "011111110011"))
    return AdminGrant(ValueRef(index, handle), perms, legacy=_flag(data, "legacyByteLength", False, "admin legacyByteLength"))


def admin_to_json(grant: AdminGrant) -> dict[str, Any]:
    out: dict[str, Any] = {
        "handle": grant.ref.handle,
        "index": grant.ref.index,
        "permissions": grant.permissions.to_bits(),
    }
    if grant.legacy:
        out["legacyByteLength"] = True
    return out


# --- HS_VLIST ------------------------------------------------------------------------------------


def vlist_to_bytes(refs: list[ValueRef]) -> bytes:
    w = Writer().int4(len(refs))
    for ref in refs:
        w.text(ref.handle).int4(ref.index)
    return w.getvalue()


def vlist_from_bytes(data: bytes) -> list[ValueRef]:
    r = Reader(data)
    refs = []
    for _ in range(r.count(8)):
        handle = r.text()
        refs.append(ValueRef(r.int4(), handle))
    r.end()
    return refs


def vlist_from_json(data: Any) -> list[ValueRef]:
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise InvalidValue("a vlist value must be an array of {handle, index} objects")
    return [ValueRef(_index(item.get("index", 0), "vlist entry index"), _require(item, "handle", str, "vlist entry")) for item in data]


def vlist_to_json(refs: list[ValueRef]) -> list[dict[str, Any]]:
    return [{"handle": ref.handle, "index": ref.index} for ref in refs]


# --- HS_SITE -------------------------------------------------------------------------------------

TRANSPORTS = {"UDP": 0, "TCP": 1, "HTTP": 2, "HTTPS": 3}
TRANSPORT_NAMES = {v: k for k, v in TRANSPORTS.items()}
PRIMARY_MASK = 0x80
MULTI_PRIMARY_MASK = 0x40
HASH_BY_ALL = 2


@dataclass(frozen=True)
class Interface:
    transport: int
    port: int
    query: bool = True
    admin: bool = False

    @property
    def service_type(self) -> int:
        return (1 if self.admin else 0) | (2 if self.query else 0)


@dataclass(frozen=True)
class Server:
    server_id: int
    address: str
    public_key: bytes = b""
    interfaces: tuple[Interface, ...] = ()


@dataclass(frozen=True)
class SiteInfo:
    servers: tuple[Server, ...]
    serial: int = 1
    primary: bool = True
    multi_primary: bool = False
    protocol: tuple[int, int] = (2, 10)
    version: int = 1
    hash_option: int = HASH_BY_ALL
    hash_filter: str = ""
    attributes: tuple[tuple[str, str], ...] = field(default=())

    def to_bytes(self) -> bytes:
        w = Writer().uint2(self.version).byte(self.protocol[0]).byte(self.protocol[1]).uint2(self.serial)
        w.byte((PRIMARY_MASK if self.primary else 0) | (MULTI_PRIMARY_MASK if self.multi_primary else 0))
        w.byte(self.hash_option).text(self.hash_filter)
        w.int4(len(self.attributes))
        for name, value in self.attributes:
            w.text(name).text(value)
        w.int4(len(self.servers))
        for server in self.servers:
            w.int4(server.server_id).raw(_address_bytes(server.address)).bytes(server.public_key)
            w.int4(len(server.interfaces))
            for iface in server.interfaces:
                w.byte(iface.service_type).byte(iface.transport).int4(iface.port)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "SiteInfo":
        r = Reader(data)
        version, major, minor, serial = r.uint2(), r.byte(), r.byte(), r.uint2()
        mask, hash_option, hash_filter = r.byte(), r.byte(), r.text()
        attributes = []
        for _ in range(r.count(8)):
            name = r.text()
            attributes.append((name, r.text()))
        servers = []
        for _ in range(r.count(28)):
            server_id, address, public_key = r.int4(), _address_text(r.raw(16)), r.bytes()
            interfaces = []
            for _ in range(r.count(6)):
                service, transport, port = r.byte(), r.byte(), r.int4()
                interfaces.append(Interface(transport, port, query=bool(service & 2), admin=bool(service & 1)))
            servers.append(Server(server_id, address, public_key, tuple(interfaces)))
        r.end()
        return cls(
            tuple(servers), serial, bool(mask & PRIMARY_MASK), bool(mask & MULTI_PRIMARY_MASK),
            (major, minor), version, hash_option, hash_filter, tuple(attributes),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "protocolVersion": f"{self.protocol[0]}.{self.protocol[1]}",
            "serialNumber": self.serial,
            "primarySite": self.primary,
            "multiPrimary": self.multi_primary,
        }
        if self.hash_option != HASH_BY_ALL:
            out["hashOption"] = self.hash_option
        if self.hash_filter:
            out["hashFilter"] = self.hash_filter
        out["attributes"] = [{"name": n, "value": v} for n, v in self.attributes]
        out["servers"] = [_server_json(s) for s in self.servers]
        return out

    @classmethod
    def from_json(cls, data: Any) -> "SiteInfo":
        if not isinstance(data, dict):
            raise InvalidValue("a site value must be a JSON object")
        data = _lower_keys(data)
        major, _, minor = _string(data, "protocolversion", "2.10", "site protocolVersion").partition(".")
        if integer_text(major) is None or integer_text(minor) is None:
            raise InvalidValue(f"protocolVersion {data.get('protocolversion')!r} is not of the form 2.10")
        major, minor = _index(major, "protocolVersion", BYTE), _index(minor, "protocolVersion", BYTE)
        servers = data.get("servers", data.get("serverlist", []))
        if not isinstance(servers, list):
            raise InvalidValue("site 'servers' must be an array")
        return cls(
            servers=tuple(_server_from_json(s) for s in servers),
            serial=_index(data.get("serialnumber", 1), "site serialNumber", UINT2),
            primary=_flag(data, "primarysite", True, "site primarySite"),
            multi_primary=_flag(data, "multiprimary", False, "site multiPrimary"),
            protocol=(major, minor),
            version=_index(data.get("version", 1), "site version", UINT2),
            hash_option=_index(data.get("hashoption", HASH_BY_ALL), "site hashOption", BYTE),
            hash_filter=_string(data, "hashfilter", "", "site hashFilter"),
            attributes=_attributes_from_json(data.get("attributes", [])),
        )


def _lower_keys(data: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in data.items()}


def _attributes_from_json(data: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(data, dict):
        return tuple((str(k), _string(data, k, "", f"site attribute {k!r}")) for k in data)
    if isinstance(data, list):
        return tuple((_require(a, "name", str, "site attribute"), _string(a, "value", "", "site attribute value")) for a in data)
    raise InvalidValue("site 'attributes' must be an array or an object")


def _address_bytes(address: str) -> bytes:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise InvalidValue(f"server address {address!r} is not an IP address") from None
    if ip.version == 4:
        return bytes(12) + ip.packed
    return ip.packed


def _address_text(raw: bytes) -> str:
    if raw[:12] == bytes(12):
        return str(ipaddress.IPv4Address(raw[12:]))
    return str(ipaddress.IPv6Address(raw))


def _server_json(server: Server) -> dict[str, Any]:
    out: dict[str, Any] = {"serverId": server.server_id, "address": server.address}
    if server.public_key:
        try:
            out["publicKey"] = {"format": "key", "value": pubkey_to_jwk(server.public_key)}
        except InvalidValue:
            out["publicKey"] = {"format": "base64", "value": base64.b64encode(server.public_key).decode("ascii")}
    out["interfaces"] = [
        {"query": i.query, "admin": i.admin, "protocol": TRANSPORT_NAMES.get(i.transport, str(i.transport)), "port": i.port}
        for i in server.interfaces
    ]
    return out


def _server_from_json(data: Any) -> Server:
    if not isinstance(data, dict):
        raise InvalidValue("a site server must be a JSON object")
    data = _lower_keys(data)
    interfaces = data.get("interfaces", data.get("interfacelist", []))
    if not isinstance(interfaces, list):
        raise InvalidValue("site server 'interfaces' must be an array")
    return Server(
        server_id=_index(data.get("serverid", 1), "site serverId"),
        address=_require(data, "address", str, "site server"),
        public_key=_key_from_json(data.get("publickey")),
        interfaces=tuple(_interface_from_json(i) for i in interfaces),
    )


def _interface_from_json(data: Any) -> Interface:
    if not isinstance(data, dict):
        raise InvalidValue("a site interface must be a JSON object")
    data = _lower_keys(data)
    protocol = _string(data, "protocol", "TCP", "interface protocol").upper()
    if protocol not in TRANSPORTS:
        raise InvalidValue(f"interface protocol {protocol!r} is not one of {', '.join(TRANSPORTS)}")
    return Interface(
        TRANSPORTS[protocol], _index(data.get("port", 2641), "interface port", UINT2),
        query=_flag(data, "query", True, "interface query"), admin=_flag(data, "admin", False, "interface admin"),
    )


def _key_from_json(data: Any) -> bytes:
    if data is None:
        return b""
    if not isinstance(data, dict):
        raise InvalidValue("a server publicKey must be {format, value}")
    fmt = str(data.get("format", "key")).lower()
    value = data.get("value")
    if fmt == "key":
        return jwk_to_pubkey(value)
    if fmt == "base64" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise InvalidValue("server publicKey is not valid base64") from None
    if fmt == "hex" and isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise InvalidValue("server publicKey is not valid hex") from None
    raise InvalidValue(f"server publicKey format {fmt!r} is not key, base64 or hex")
