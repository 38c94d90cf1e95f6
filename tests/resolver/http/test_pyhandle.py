"""pyhandle 1.5.0, a real Handle client, over HTTPS against a running ``idres serve``."""

from __future__ import annotations

import asyncio
import time

import pytest
from pyhandle.client.resthandleclient import RESTHandleClient
from pyhandle.handleexceptions import HandleAuthenticationError, HandleNotFoundException

from registry.pg import db
from registry.pg.store import Store
from resolver.config import Settings
from resolver.ops.provisioning import create_prefix_admin, home_prefix
from resolver.keys.site import SiteDescription
from tests.nodes import ServeProcess


@pytest.fixture
async def served(dsn, tmp_path):
    pool = await db.create_pool(dsn, max_size=1)
    try:
        store = Store(pool)
        await home_prefix(store, SiteDescription(Settings.load(env={})), "88.101", int(time.time()))
        admin = await create_prefix_admin(store, "88.101", int(time.time()))
    finally:
        await pool.close()
    node = ServeProcess("--dsn", dsn, "--data-dir", str(tmp_path), "--port", "0", "--tls-port", "0", "--workers", "1")
    await asyncio.to_thread(node.start)
    node.ca_file = str(tmp_path / "tls" / "cert.pem")  # the self-signed certificate, trusted as it is
    yield node, admin
    await asyncio.to_thread(node.stop)


def client(node, user: str, password: str) -> RESTHandleClient:
    return RESTHandleClient.instantiate_with_username_and_password(node.https, user, password, HTTPS_verify=node.ca_file)


async def test_pyhandle_lifecycle(served):
    node, admin = served

    def scenario():
        c = client(node, str(admin.identity), admin.secret)
        handle = "88.101/PYHANDLE-1"
        assert c.register_handle(handle, "https://example.com/1", checksum="123", MODEL="WM-7030") == handle
        record = c.retrieve_handle_record(handle)
        assert record["URL"] == "https://example.com/1" and record["CHECKSUM"] == "123" and record["MODEL"] == "WM-7030"
        # values come back in index order (pyhandle's own read test relies on it)
        entries = [
            {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {"handle": "0.NA/88.101", "index": 200, "permissions": "011111110011"}}},
            {"index": 111, "type": "TEST1", "data": "val1"},
            {"index": 2222, "type": "TEST2", "data": "val2"},
            {"index": 333, "type": "TEST3", "data": "val3"},
            {"index": 4, "type": "TEST4", "data": "val4"},
        ]
        c.register_handle_json("88.101/PYHANDLE-ORDER", entries)
        values = c.retrieve_handle_record_json("88.101/PYHANDLE-ORDER")["values"]
        assert [v["index"] for v in values] == [4, 100, 111, 333, 400, 2222]  # 400: the node's HS_SIGNATURE
        assert values[2]["type"] == "TEST1" and values[4]["type"] == "HS_SIGNATURE"
        # modify one value and add another
        c.modify_handle_value(handle, CHECKSUM="456", COLOUR="white")
        record = c.retrieve_handle_record(handle)
        assert record["CHECKSUM"] == "456" and record["COLOUR"] == "white" and record["URL"] == "https://example.com/1"
        # delete a value
        c.delete_handle_value(handle, "COLOUR")
        assert "COLOUR" not in c.retrieve_handle_record(handle)
        # delete the handle
        assert c.delete_handle(handle) == handle
        assert c.retrieve_handle_record_json(handle) is None
        with pytest.raises(HandleNotFoundException):
            c.delete_handle(handle)

    await asyncio.to_thread(scenario)


async def test_pyhandle_not_found_and_wrong_password(served):
    node, admin = served

    def scenario():
        reader = RESTHandleClient.instantiate_for_read_access(node.https, HTTPS_verify=node.ca_file)
        assert reader.retrieve_handle_record_json("88.101/NOTHING-HERE") is None
        assert reader.get_value_from_handle("88.101/ADMIN", "HS_SECKEY") is None  # secret hidden from anonymous readers
        wrong = client(node, str(admin.identity), "not-the-secret")
        with pytest.raises(HandleAuthenticationError):
            wrong.register_handle("88.101/PYHANDLE-2", "https://example.com/2")
        assert reader.retrieve_handle_record_json("88.101/PYHANDLE-2") is None
        with pytest.raises(HandleNotFoundException):
            client(node, "300:88.101/NO-SUCH-USER", "x")

    await asyncio.to_thread(scenario)
