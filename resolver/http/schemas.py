"""The JSON bodies of the HTTP API as pydantic models, for the OpenAPI document (``openapi.py``).

They describe what the handlers read and write (spec §3 for values, §4 for the answers); the handlers
themselves parse with ``registry.value_json`` and render with ``respond.py``, so these models are the
contract, checked against the live node by the schemathesis test. Optional keys are left out of an
answer rather than sent as null, and the schemas say so.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from registry.errors import ResponseCode

Index = Annotated[int, Field(ge=1, le=2**31 - 1, description="the value's index, unique in the record")]
Timestamp = Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", description="UTC, seconds")]
Ttl = Annotated[int | str, Field(description="seconds (relative), or an ISO-8601 expiry (absolute)")]


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class ValueReference(Model):
    handle: str
    index: int


class ValueData(Model):
    """``data`` of a value in an answer: the format tells how to read ``value``."""

    format: Literal["string", "base64", "admin", "vlist", "site", "key"]
    value: Any = Field(description="text (string), Base64 with padding (base64), or the value's JSON form (admin, vlist, site, key)")


class HandleValue(Model):
    """A value as answers carry it (spec §3.1); keys in this order."""

    index: Index
    type: str
    data: ValueData
    permissions: Annotated[str, Field(pattern=r"^[01]{4}$", description="adminRead adminWrite publicRead publicWrite; left out when 1110")] | SkipJsonSchema[None] = None
    ttl: Ttl
    timestamp: Timestamp | SkipJsonSchema[None] = None
    references: list[ValueReference] | SkipJsonSchema[None] = None


class ValueDataInput(Model):
    format: Annotated[str, Field(pattern=r"(?i)^(string|base64|hex|admin|vlist|site|key)$", description="any case")]
    value: Any


class HandleValueInput(Model):
    """A value as a client sends it (spec §3.2): ``data`` may be a bare string; ``timestamp`` is replaced."""

    index: int | Annotated[str, Field(pattern=r"^\s*[0-9]+\s*$")]
    type: str
    data: str | ValueDataInput
    ttl: Ttl | SkipJsonSchema[None] = None
    permissions: str | SkipJsonSchema[None] = None
    timestamp: str | SkipJsonSchema[None] = None
    references: list[ValueReference] | SkipJsonSchema[None] = None


class ValuesObject(Model):
    handle: Annotated[str, Field(description="must be the handle of the path (any case)")] | SkipJsonSchema[None] = None
    values: list[HandleValueInput] | None


class HandleAnswer(Model):
    """A resolution: responseCode 1, or 200 when the handle exists but no value matches."""

    responseCode: Literal[1, 200]
    handle: Annotated[str, Field(description="as the client spelled it")]
    values: list[HandleValue]


class Referral(Model):
    """HTTP 300: resolve at the node these HS_SITE / HS_SERV (or their .PREFIX) values name."""

    responseCode: Literal[303]
    handle: str
    values: list[HandleValue]


class ErrorBody(Model):
    """Every error: the responseCode, a message a person can act on, and the handle asked for."""

    responseCode: Annotated[int, Field(json_schema_extra={"enum": [int(code) for code in ResponseCode]})]
    message: str | SkipJsonSchema[None] = None
    handle: str | SkipJsonSchema[None] = None


class Done(Model):
    """A write that succeeded: the handle written (for a mint, the new handle) or the prefix as sent."""

    responseCode: Literal[1]
    handle: str


class HandleList(Model):
    responseCode: Literal[1]
    prefix: Annotated[str, Field(description="as sent")]
    totalCount: Annotated[str, Field(pattern=r"^[0-9]+$", description="a string, as Handle.Net sends it")]
    page: int | SkipJsonSchema[None] = None
    pageSize: int | SkipJsonSchema[None] = None
    handles: list[str]


class PrefixList(Model):
    responseCode: Literal[1]
    totalCount: Annotated[str, Field(pattern=r"^[0-9]+$")]
    page: int | SkipJsonSchema[None] = None
    pageSize: int | SkipJsonSchema[None] = None
    prefixes: Annotated[list[str], Field(description="prefix handles, 0.NA/<prefix>")]


class Interface(Model):
    query: bool
    admin: bool
    protocol: str
    port: int


class Server(Model):
    serverId: int
    address: str
    publicKey: ValueData
    interfaces: list[Interface]


class Attribute(Model):
    name: str
    value: str


class Site(Model):
    """HS_SITE in JSON (spec §3.4): this node's servers, interfaces and public key."""

    version: int
    protocolVersion: str
    serialNumber: int
    primarySite: bool
    multiPrimary: bool
    hashOption: int | SkipJsonSchema[None] = None
    hashFilter: Any = None
    attributes: list[Attribute]
    servers: list[Server]


class SiteAnswer(Model):
    responseCode: Literal[1]
    site: Site


class Delegation(Model):
    prefix: str
    servers: Annotated[list[str], Field(description="HTTP(S) base URLs of the nodes serving the prefix")]
    derivedPrefixes: Annotated[list[str], Field(description="those serving prefixes derived from it")]


class DelegationList(Model):
    responseCode: Literal[1]
    totalCount: Annotated[str, Field(pattern=r"^[0-9]+$")]
    delegations: list[Delegation]


class DelegateTo(BaseModel):
    to: Annotated[list[str], Field(min_length=1, description="base URLs of the nodes; each one's /api/site is fetched")]


class DelegateSites(BaseModel):
    sites: Annotated[list[dict[str, Any]], Field(min_length=1, description="HS_SITE values in the JSON of spec §3.4")]


class Health(Model):
    status: Literal["ok"]


class Readiness(Model):
    """Whether this worker can serve, with the figures behind it."""

    status: Literal["ready", "unavailable"]
    pid: int
    database: bool
    changeFollower: bool
    homedPrefixes: int


class BatchItem(BaseModel):
    """One item of POST /api/batch (a line of NDJSON, or an element of a JSON array)."""

    op: Literal["create", "replace", "add", "remove", "delete"] = "create"
    handle: str
    values: Annotated[list[HandleValueInput] | None, Field(description="create, replace, add")] = None
    indexes: Annotated[list[int] | None, Field(description="remove")] = None
    overwrite: Annotated[bool, Field(description="add: replace values at existing indexes")] = True


class BatchResult(Model):
    """One line of a batch's answer: an item's result, in input order; the last line is {"done": …}."""

    index: Annotated[int, Field(description="the item's position, from 0")]
    responseCode: int
    message: str
    handle: str | None = None


class Session(Model):
    sessionId: str
    nonce: Annotated[str, Field(description="the challenge, base64")]
    authenticated: bool
    id: Annotated[str | None, Field(description="the identity, once authenticated")] = None


class SessionAnswer(BaseModel):
    """The answer to a session's challenge (also accepted in the Authorization: Handle header)."""

    id: Annotated[str, Field(description="index:handle of the identity")]
    type: Annotated[str, Field(description="HS_PUBKEY or HS_SECKEY")]
    cnonce: Annotated[str, Field(description="the client's nonce, base64")]
    alg: Annotated[str, Field(description="SHA256, SHA1, …")]
    signature: Annotated[str, Field(description="base64")]


class Counts(Model):
    resolutions: int
    notFound: int
    registrations: int


class HourCounts(Counts):
    hour: Annotated[str, Field(description="the start of the hour, UTC")]


class PrefixStats(Model):
    responseCode: Literal[1]
    prefix: str
    from_: Annotated[str, Field(alias="from")]
    to: str
    total: Counts
    hours: list[HourCounts]


class PrefixReport(Model):
    prefix: str
    total: Counts
    hours: list[HourCounts]


class StatsReport(Model):
    """The report a parent node pulls: every prefix homed here (docs/metrics.md)."""

    responseCode: Literal[1]
    node: str
    from_: Annotated[str, Field(alias="from")]
    to: str
    prefixes: list[PrefixReport]


class SyncRecord(Model):
    """A record as the origin stores it (docs/replication.md)."""

    handle: str
    values: Annotated[str, Field(description="standard base64 of every value, signatures included, in the Handle binary encoding")]
    publicJson: Annotated[str, Field(description="the JSON text of the record's public values as the origin serves them")]
    minTtl: int
    expiresAt: int | None = None
    signatureExpires: int | None = None


class SyncChange(Model):
    cursor: int
    handle: Annotated[str, Field(description="the handle's comparison key")]
    op: Annotated[str, Field(description="upsert, delete, home or unhome")]
    at: str
    record: SyncRecord | None


class ChangePage(Model):
    """A page of the change feed: changes in commit order, the cursor to continue from, whether more wait."""

    responseCode: Literal[1]
    changes: list[SyncChange]
    next: int
    more: bool
    head: int


class SyncStatus(Model):
    """This node's change feed (head, horizon, retention) and the mirrors it keeps (docs/replication.md)."""

    responseCode: Literal[1]
    feed: dict[str, Any]
    mirrors: list[dict[str, Any]]


MODELS: tuple[type[BaseModel], ...] = (
    HandleAnswer, Referral, ErrorBody, Done, HandleList, PrefixList, SiteAnswer, DelegationList, Health, Readiness,
    HandleValueInput, ValuesObject, DelegateTo, DelegateSites, BatchItem, BatchResult, Session, SessionAnswer,
    PrefixStats, StatsReport, ChangePage, SyncStatus,
)
