"""The one error hierarchy of idres.

Every error carries a Handle ``responseCode`` (handle-wire.md §3.1) and a message a person can act
on. The HTTP status belongs to the transport and is derived from the response code by the resolver;
an error may name one itself where the Handle REST API fixes it (a body too large is 413).
"""

from __future__ import annotations

from enum import IntEnum


class ResponseCode(IntEnum):
    SUCCESS = 1
    ERROR = 2
    SERVER_TOO_BUSY = 3
    PROTOCOL_ERROR = 4
    OPERATION_NOT_SUPPORTED = 5
    RECURSION_COUNT_TOO_HIGH = 6
    SERVER_BACKUP = 7
    HANDLE_NOT_FOUND = 100
    HANDLE_ALREADY_EXISTS = 101
    INVALID_HANDLE = 102
    VALUES_NOT_FOUND = 200
    VALUE_ALREADY_EXISTS = 201
    INVALID_VALUE = 202
    OUT_OF_DATE_SITE_INFO = 300
    SERVER_NOT_RESP = 301
    SERVICE_REFERRAL = 302
    PREFIX_REFERRAL = 303
    INVALID_ADMIN = 400
    INSUFFICIENT_PERMISSIONS = 401
    AUTHENTICATION_NEEDED = 402
    AUTHENTICATION_FAILED = 403
    INVALID_CREDENTIAL = 404


class IdresError(Exception):
    """Base of every error idres raises on purpose."""

    response_code: ResponseCode = ResponseCode.ERROR
    http_status: int | None = None

    def __init__(self, message: str = "", *, handle: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.handle = handle


class ProtocolError(IdresError):
    """The request is malformed: bad JSON, bad parameters, mismatched indexes."""

    response_code = ResponseCode.PROTOCOL_ERROR


class UnsupportedMediaType(ProtocolError):
    """A body that is not JSON; Handle.Net answers 400 with responseCode 4."""


class BodyTooLarge(ProtocolError):
    http_status = 413


class BodyTimeout(ProtocolError):
    """The request body stalled: it did not arrive within the body deadline."""

    http_status = 408


class IdempotencyKeyReused(ProtocolError):
    """An Idempotency-Key sent again with a different request body."""

    http_status = 422


class OperationNotSupported(IdresError):
    response_code = ResponseCode.OPERATION_NOT_SUPPORTED


class ServerUnavailable(IdresError):
    """The store cannot be reached or is overloaded; the client may retry. ``cause`` says why, for the
    log: a client is told only that it may try again."""

    response_code = ResponseCode.SERVER_TOO_BUSY
    cause: str = ""


class InvalidHandle(IdresError):
    response_code = ResponseCode.INVALID_HANDLE


class HandleNotFound(IdresError):
    response_code = ResponseCode.HANDLE_NOT_FOUND


class HandleAlreadyExists(IdresError):
    response_code = ResponseCode.HANDLE_ALREADY_EXISTS


class ValuesNotFound(IdresError):
    response_code = ResponseCode.VALUES_NOT_FOUND


class ValueAlreadyExists(IdresError):
    response_code = ResponseCode.VALUE_ALREADY_EXISTS


class InvalidValue(IdresError):
    response_code = ResponseCode.INVALID_VALUE


class PrefixNotHomed(IdresError):
    response_code = ResponseCode.SERVER_NOT_RESP

    def __init__(self, message: str = "That prefix doesn't live here", *, handle: str | None = None) -> None:
        super().__init__(message, handle=handle)


class AuthenticationNeeded(IdresError):
    response_code = ResponseCode.AUTHENTICATION_NEEDED


class AuthenticationFailed(IdresError):
    """Credentials were sent but do not verify (wrong secret, unknown identity)."""

    response_code = ResponseCode.AUTHENTICATION_NEEDED
    http_status = 401


class UpstreamUnavailable(IdresError):
    """No node serving a delegated prefix answered (refused, timed out, failed) within the deadline."""

    response_code = ResponseCode.SERVER_NOT_RESP
    http_status = 504


class UpstreamInvalid(IdresError):
    """A node serving a delegated prefix answered with something idres cannot relay: not JSON, the record
    of another handle, a record whose signatures do not verify."""

    response_code = ResponseCode.ERROR
    http_status = 502


class ResolutionLoop(IdresError):
    """Resolution came back to a node it had passed, or passed through too many nodes."""

    response_code = ResponseCode.RECURSION_COUNT_TOO_HIGH
    http_status = 508


class Conflict(IdresError):
    """The request contradicts the node's state (delegating a prefix that is homed here): HTTP 409."""

    response_code = ResponseCode.PROTOCOL_ERROR
    http_status = 409


class TooBusy(IdresError):
    """The node has as much of some kind of work in hand as it takes (snapshots being streamed): try again later."""

    response_code = ResponseCode.SERVER_TOO_BUSY
    http_status = 503


class SnapshotNeeded(IdresError):
    """A change-feed cursor the log can no longer continue (older than its retention horizon, or ahead
    of it): the reader must start again from a fresh snapshot."""

    response_code = ResponseCode.OUT_OF_DATE_SITE_INFO
    http_status = 410


class InsufficientPermissions(IdresError):
    response_code = ResponseCode.INSUFFICIENT_PERMISSIONS


class TooManyRequests(IdresError):
    """A rate limit was reached; ``retry_after`` says in how many seconds to try again."""

    response_code = ResponseCode.SERVER_TOO_BUSY
    http_status = 429

    def __init__(self, message: str = "", *, retry_after: int = 1, handle: str | None = None) -> None:
        super().__init__(message, handle=handle)
        self.retry_after = retry_after


class ConcurrentUpdate(IdresError):
    """A record changed between read and write; the caller retries the whole operation."""

    response_code = ResponseCode.SERVER_TOO_BUSY


class CorruptRecord(IdresError):
    """A stored record cannot be decoded: a server-side fault, never the client's."""


class SchemaMismatch(IdresError):
    """The database schema is not the one this idres was built for."""


class ConfigurationError(IdresError):
    """A setting has a value idres cannot use."""
