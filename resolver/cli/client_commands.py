"""``idres get|put|delete``: talk to a running node over its REST API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

import orjson

from registry.errors import InvalidValue, ProtocolError

from ..config import Settings
from .client import HandleClient, Reply
from .output import EXIT_OK, EXIT_REFUSED, Output
from .response_codes import explain

PLAIN_HTTP_WARNING = ("idres: warning: credentials over plain HTTP count only on a node that runs with --allow-http-auth; "
                      "any other node ignores them and shows only the public values: give its https:// URL in --url")


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser, remote: argparse.ArgumentParser) -> None:
    get = sub.add_parser("get", parents=[common, remote], help="resolve a handle on a running node")
    get.add_argument("handle")
    get.add_argument("--type", action="append", default=[], help="only values of this type; repeatable")
    get.add_argument("--index", action="append", type=int, default=[], help="only the value at this index; repeatable")
    get.set_defaults(run=cmd_get)

    put = sub.add_parser("put", parents=[common, remote], help="create or change a handle on a running node")
    put.add_argument("handle")
    put.add_argument("--value", nargs=3, action="append", default=[], metavar=("INDEX", "TYPE", "DATA"),
                     help="a string value; repeatable")
    put.add_argument("--file", help="JSON values (array or {\"values\": [...]}) from a file, - for stdin")
    put.add_argument("--add", action="store_true", help="add or replace only these values (PUT ?index=…)")
    put.add_argument("--no-overwrite", action="store_true", help="fail if the handle (or, with --add, an index) exists")
    put.add_argument("--mint", action="store_true", help="mint a new suffix under HANDLE (which ends with '/')")
    put.set_defaults(run=cmd_put)

    delete = sub.add_parser("delete", parents=[common, remote], help="delete a handle or some of its values")
    delete.add_argument("handle")
    delete.add_argument("--index", action="append", type=int, default=[], help="remove only this value; repeatable")
    delete.set_defaults(run=cmd_delete)


def _client(settings: Settings) -> HandleClient:
    client = settings.client
    return HandleClient(client.url, user=client.user, password=client.password,
                        verify=client.tls_verify, ca_file=client.ca_file)


def _report(client: HandleClient, reply: Reply, out: Output, text: Callable[[dict], str]) -> int:
    body = reply.body if isinstance(reply.body, dict) else {"message": str(reply.body or "")}
    if reply.ok:
        out.emit(body, text(body))
        return EXIT_OK
    if out.as_json:
        print(orjson.dumps({"status": reply.status, **body}).decode(), flush=True)
    print(f"idres: {explain(reply.status, body, sent_credentials=client.sends_credentials)}", file=sys.stderr, flush=True)
    return EXIT_REFUSED


def _value_text(value: dict) -> str:
    data = value.get("data", {})
    shown = data.get("value") if isinstance(data, dict) else data
    if not isinstance(shown, str):
        shown = orjson.dumps(shown).decode()
    return f"{value.get('index'):>6}  {value.get('type', '')}  {shown}"


def cmd_get(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    client = _client(settings)
    if client.sends_credentials and client.plain_http:
        print(PLAIN_HTTP_WARNING, file=sys.stderr, flush=True)
    query = [("type", t) for t in args.type] + [("index", str(i)) for i in args.index]
    reply = client.request("GET", client.handle_path(args.handle), query)
    if reply.status == 200 and isinstance(reply.body, dict) and reply.body.get("responseCode") == 200:
        reply = Reply(200, {**reply.body, "responseCode": 1})  # exists, nothing matched: not an error
    return _report(client, reply, out, lambda b: "\n".join([b.get("handle", "")] + [_value_text(v) for v in b.get("values", [])]))


def _values_from(args: argparse.Namespace) -> Any:
    if args.file:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"{args.file} is not valid JSON: {exc}") from None
    values = []
    for index, value_type, data in args.value:
        if not index.isdigit():
            raise InvalidValue(f"--value index {index!r} must be a positive number")
        values.append({"index": int(index), "type": value_type, "data": {"format": "string", "value": data}})
    if not values:
        raise ProtocolError("give the values with --value INDEX TYPE DATA or --file")
    return {"values": values}


def cmd_put(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    client = _client(settings)
    body = _values_from(args)
    query = [("overwrite", "false" if args.no_overwrite else "true")]
    if args.mint:
        query.append(("mintNewSuffix", "true"))
    if args.add:
        query.append(("index", "various"))
    reply = client.request("PUT", client.handle_path(args.handle), query, body)
    return _report(client, reply, out, lambda b: f"{'created' if reply.status == 201 else 'updated'} {b.get('handle')}")


def cmd_delete(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    client = _client(settings)
    query = [("index", str(i)) for i in args.index]
    reply = client.request("DELETE", client.handle_path(args.handle), query)
    what = f"values {', '.join(map(str, args.index))} of " if args.index else ""
    return _report(client, reply, out, lambda b: f"deleted {what}{b.get('handle')}")
