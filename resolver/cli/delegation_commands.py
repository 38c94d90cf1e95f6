"""``idres prefix delegate|undelegate``: the parent node names (or stops naming) the node serving a child
prefix, against its own data directory or DSN."""

from __future__ import annotations

import argparse
import asyncio
import time

from registry.errors import ConfigurationError, IdresError
from registry.model import parse_prefix
from registry.values import SiteInfo

from ..config import Settings
from ..ops.provisioning import node_store
from ..resolution.keeper import load_snapshot
from ..writes.delegations import remove_delegation, write_delegation
from .client import HandleClient
from .output import EXIT_OK, Output


def add_parsers(psub: argparse._SubParsersAction, common: argparse.ArgumentParser, storage: argparse.ArgumentParser) -> None:
    delegate = psub.add_parser("delegate", parents=[common, storage],
                               help="name the node(s) that serve a prefix derived from one homed here")
    delegate.add_argument("prefix", help="the child prefix, e.g. 88.101.5")
    delegate.add_argument("--to", action="append", required=True, metavar="URL",
                          help="base URL of a node serving it (its /api/site is fetched); repeatable, asked in order")
    delegate.add_argument("--insecure", action="store_true", help="do not verify the child's TLS certificate")
    delegate.set_defaults(run=cmd_delegate)
    undelegate = psub.add_parser("undelegate", parents=[common, storage], help="remove a prefix's delegation")
    undelegate.add_argument("prefix", help="the child prefix")
    undelegate.set_defaults(run=cmd_undelegate)


def fetch_site(url: str, settings: Settings, insecure: bool) -> SiteInfo:
    """The HS_SITE a node publishes at ``/api/site``."""
    client = HandleClient(url, verify=settings.client.tls_verify and not insecure, ca_file=settings.client.ca_file)
    reply = client.request("GET", "/api/site")
    site = reply.body.get("site") if isinstance(reply.body, dict) else None
    if reply.status != 200 or not isinstance(site, dict):
        raise ConfigurationError(f"{url} did not answer /api/site with its site (HTTP {reply.status}): is it an idres node?")
    try:
        return SiteInfo.from_json(site)
    except IdresError as exc:
        raise ConfigurationError(f"the site {url} published cannot be read: {exc.message}") from None


def cmd_delegate(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    prefix = parse_prefix(args.prefix)
    sites = [fetch_site(url, settings, args.insecure) for url in args.to]

    async def go() -> None:
        async with node_store(settings) as (store, _keyring):
            await write_delegation(store, await load_snapshot(store), prefix, sites, int(time.time()))

    asyncio.run(go())
    out.emit({"prefix": prefix, "delegated": True, "to": args.to, "sites": [s.to_json() for s in sites]},
             f"prefix {prefix} delegated to {', '.join(args.to)} (0.NA/{prefix} names it with HS_SITE and HS_SITE.PREFIX)")
    return EXIT_OK


def cmd_undelegate(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    prefix = parse_prefix(args.prefix)

    async def go() -> None:
        async with node_store(settings) as (store, _keyring):
            await remove_delegation(store, await load_snapshot(store), prefix)

    asyncio.run(go())
    out.emit({"prefix": prefix, "delegated": False}, f"prefix {prefix} is no longer delegated")
    return EXIT_OK
