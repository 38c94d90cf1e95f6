"""What a node's refusal means, in a sentence, for the errors of ``idres get|put|delete``.

Every Handle responseCode (handle-http-api.md §5) has a sentence; where the person at the command line
can do something about it, the sentence says what.
"""

from __future__ import annotations

from typing import Any

from registry.errors import ResponseCode

CREDENTIALS_HINT = ("give --user INDEX:HANDLE and --password (or IDRES_USER and IDRES_PASSWORD) "
                    "with the node's https:// URL in --url")

SENTENCES: dict[int, str] = {
    ResponseCode.SUCCESS: "done",
    ResponseCode.ERROR: "the node failed unexpectedly; its log names the incident",
    ResponseCode.SERVER_TOO_BUSY: "the node is busy or its database is unavailable; try again shortly",
    ResponseCode.PROTOCOL_ERROR: "the node could not use the request",
    ResponseCode.OPERATION_NOT_SUPPORTED: "the node does not offer this operation",
    ResponseCode.RECURSION_COUNT_TOO_HIGH: "resolution went round in a loop of delegations, or through too many nodes",
    ResponseCode.SERVER_BACKUP: "the node is read-only for now; try again later",
    ResponseCode.HANDLE_NOT_FOUND: "no such handle",
    ResponseCode.HANDLE_ALREADY_EXISTS: "the handle already exists (drop --no-overwrite to replace it)",
    ResponseCode.INVALID_HANDLE: "the handle is not valid",
    ResponseCode.VALUES_NOT_FOUND: "the handle has no value at that index",
    ResponseCode.VALUE_ALREADY_EXISTS: "a value already has that index (drop --no-overwrite to replace it)",
    ResponseCode.INVALID_VALUE: "a value is not valid",
    ResponseCode.OUT_OF_DATE_SITE_INFO: "the node's site information is out of date",
    ResponseCode.SERVER_NOT_RESP: "this node does not serve that prefix, and could not reach a node that does",
    ResponseCode.SERVICE_REFERRAL: "the node refers you to another service for this handle",
    ResponseCode.PREFIX_REFERRAL: "the node refers you to the node serving this prefix (its values say where)",
    ResponseCode.INVALID_ADMIN: "the identity is not an administrator of this handle",
    ResponseCode.INSUFFICIENT_PERMISSIONS: "the identity is not allowed to do this (its HS_ADMIN permissions do not cover it)",
    ResponseCode.AUTHENTICATION_NEEDED: "the node needs credentials for this: " + CREDENTIALS_HINT,
    ResponseCode.AUTHENTICATION_FAILED: "the credentials were refused: check --user and --password",
    ResponseCode.INVALID_CREDENTIAL: "the credentials are not valid: check --user and --password",
}


def sentence(code: Any) -> str:
    """The sentence of a responseCode; a plain statement of the number for codes no version knew."""
    try:
        return SENTENCES[int(code)]
    except (TypeError, ValueError, KeyError):
        return f"the node answered with responseCode {code}"


def _authentication(message: str, sent_credentials: bool) -> str:
    if not sent_credentials:
        return SENTENCES[ResponseCode.AUTHENTICATION_NEEDED]
    if "HTTPS" in message:
        return "the node accepts credentials only over HTTPS: give its https:// URL in --url"
    return "the node did not accept the credentials: check --user and --password"


def explain(status: int, body: dict[str, Any], *, sent_credentials: bool = False) -> str:
    """One line for a refused request: what the code means and what to do, then the node's own message."""
    code = body.get("responseCode")
    message = str(body.get("message") or "")
    if code == ResponseCode.AUTHENTICATION_NEEDED:
        meaning = _authentication(message, sent_credentials)
    else:
        meaning = sentence(code) if code is not None else "the node's answer has no responseCode"
    said = f"HTTP {status}, responseCode {code}: {meaning}" if code is not None else f"HTTP {status}: {meaning}"
    return said + (f" ({message})" if message else "")
