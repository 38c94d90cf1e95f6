"""The identifier policy over HTTP (docs/identifiers.md): new handles that break it get a JSON 400 naming
the rule and nothing is stored; existing records stay resolvable, replaceable and deletable; the policy
can be switched off; the IDIS-strict profile holds on the prefixes it is switched on for and no other;
encoded controls in a URL get the JSON error shape."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from yarl import URL

from registry.model import Handle, HandleValue, Record, fold
from tests.db_state import snapshot
from tests.nodes import InProcessNode

URL_VALUE = {"index": 1, "type": "URL", "data": "https://example.com/p/1"}
ADMIN_VALUE = {"index": 100, "type": "HS_ADMIN",
               "data": {"format": "admin", "value": {"handle": "0.NA/88.101", "index": 200, "permissions": "011111110011"}}}

REFUSED = [
    # (handle, message fragment)
    ("88.101/a\u0085b", "contains a control character (U+0085) at position 9"),
    ("88.101/a\u202eb", "contains a bidirectional control character (U+202E) at position 9"),
    ("88.101/a\u2067b", "bidirectional control character (U+2067)"),
    ("88.101/a\u200bb", "contains a zero-width character (U+200B) at position 9"),
    ("88.101/\ufeffab", "zero-width character (U+FEFF)"),
    ("88.101/a/./b", "a '.' segment in its suffix (segment 2)"),
    ("88.101/a/../b", "a '..' segment in its suffix (segment 2)"),
    ("88.101/..", "a '..' segment in its suffix (segment 1)"),
    ("88.101//b", "an empty segment"),
    ("88.101/a//b", "an empty segment"),
    ("88.101/a/", "an empty segment"),
    ("88.101/e\u0301", "not in Unicode normalisation form NFC"),
]


def url(node, handle: str) -> URL:
    """The handle's URL, every character but the slashes percent-encoded and dot segments kept as they are
    (``encoded=True``: the client sends the path as written, rather than normalised)."""
    return URL(node.https + "/api/handles/" + quote(handle, safe="/"), encoded=True)


def raw(node, path: str) -> URL:
    return URL(node.https + path, encoded=True)


@pytest.mark.parametrize("handle, fragment", REFUSED, ids=[repr(h) for h, _ in REFUSED])
async def test_new_handles_breaking_the_policy_are_refused_and_nothing_is_stored(node, handle, fragment):
    before = await snapshot(node.dsn)
    r = await node.session.put(url(node, handle), json=[URL_VALUE], headers=node.auth())
    answer = await r.json()
    assert r.status == 400, answer
    assert answer["responseCode"] == 102
    assert fragment in answer["message"]
    assert answer["message"].endswith("refused by the identifier policy (docs/identifiers.md)")
    assert answer["handle"] == handle
    assert await snapshot(node.dsn) == before


async def test_mint_under_a_base_breaking_the_policy_is_refused(node):
    before = await snapshot(node.dsn)
    r = await node.session.put(url(node, "88.101/a\u200b/") .with_query(mintNewSuffix="true"), json=[URL_VALUE],
                               headers=node.auth())
    answer = await r.json()
    assert (r.status, answer["responseCode"]) == (400, 102) and "zero-width" in answer["message"]
    assert await snapshot(node.dsn) == before


async def test_a_derived_prefix_record_breaking_the_policy_is_refused(node):
    before = await snapshot(node.dsn)
    r = await node.session.put(url(node, "0.NA/88.101.\u200b5"), json=[ADMIN_VALUE], headers=node.auth())
    assert (r.status, (await r.json())["responseCode"]) == (400, 102)
    assert await snapshot(node.dsn) == before


async def test_an_admin_handle_breaking_the_policy_is_refused(node):
    value = {**ADMIN_VALUE, "data": {"format": "admin", "value": {"handle": "0.NA/88.101\u200b", "index": 200}}}
    before = await snapshot(node.dsn)
    r = await node.session.put(url(node, "88.101/X"), json=[URL_VALUE, value], headers=node.auth())
    answer = await r.json()
    assert (r.status, answer["responseCode"]) == (400, 202)
    assert "value 100 (HS_ADMIN): admin handle: 0.NA/88.101\\u200b contains a zero-width character" in answer["message"]
    assert await snapshot(node.dsn) == before


@pytest.mark.parametrize("handle", ["88.101/a\u200bb", "88.101/a/../b", "88.101/e\u0301"])
async def test_existing_records_stay_resolvable_replaceable_and_deletable(node, store, handle):
    """A record written before the policy (here: straight into the store) is not judged by it."""
    await node.node.store.create(Record(Handle.parse(handle), (HandleValue(1, "URL", b"https://example.com/old", timestamp=1),)))
    await node.settled()
    r = await node.session.get(url(node, handle))
    assert r.status == 200 and (await r.json())["values"][0]["data"]["value"] == "https://example.com/old"
    r = await node.session.put(url(node, handle), json=[URL_VALUE], headers=node.auth())
    assert r.status == 200, await r.text()
    assert (await store.get(fold(handle))).record.values[0].data == URL_VALUE["data"].encode()
    r = await node.session.put(url(node, handle).with_query(index="2"), json=[{"index": 2, "type": "EMAIL", "data": "a@b.c"}],
                               headers=node.auth())
    assert r.status == 201, await r.text()
    r = await node.session.delete(url(node, handle), headers=node.auth())
    assert r.status == 200
    assert await store.get(fold(handle)) is None


@pytest.mark.parametrize("handle", [h for h, _ in REFUSED])
async def test_switched_off_the_policy_stores_the_handle_as_sent(dsn, tmp_path, store, handle):
    async with InProcessNode(dsn, tmp_path, identifier_policy=False) as node:
        await node.provision("88.101")
        r = await node.session.put(url(node, handle), json=[URL_VALUE], headers=node.auth())
        assert r.status == 201, await r.text()
        stored = await store.get(fold(handle))
        assert stored.record.handle.text == handle
        r = await node.session.get(url(node, handle))
        assert (await r.json())["handle"] == handle


# --- the IDIS-strict profile on one prefix -------------------------------------------------------


@pytest.fixture
async def strict_node(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, idis_strict_prefixes="88.101") as node:
        await node.provision("88.101")
        await node.provision("88.102")
        yield node


@pytest.mark.parametrize("suffix, fragment", [
    ("a~b", "contains '~' (U+007E) at position 9"),
    ("a/b", "has 2 '/' characters"),
    ("产品", "contains '产' (U+4EA7)"),
    ("x" * 122, "is 129 characters long; the limit is 128"),
    (".ab", "starts or ends with '.'"),
])
async def test_the_idis_strict_profile_holds_on_its_prefix_and_not_another(strict_node, suffix, fragment):
    node = strict_node
    before = await snapshot(node.dsn)
    r = await node.session.put(url(node, f"88.101/{suffix}"), json=[URL_VALUE], headers=node.auth("88.101"))
    answer = await r.json()
    assert (r.status, answer["responseCode"]) == (400, 102), answer
    assert fragment in answer["message"]
    assert "refused by the IDIS-strict profile of prefix 88.101" in answer["message"]
    assert await snapshot(node.dsn) == before
    r = await node.session.put(url(node, f"88.102/{suffix}"), json=[URL_VALUE], headers=node.auth("88.102"))
    assert r.status == 201, await r.text()


async def test_the_idis_strict_profile_covers_derived_prefixes_and_limits_strings(strict_node):
    node = strict_node
    r = await node.session.put(url(node, "0.NA/88.101.x5"), json=[ADMIN_VALUE], headers=node.auth("88.101"))
    answer = await r.json()
    assert (r.status, answer["responseCode"]) == (400, 102)
    assert "names prefix 88.101.x5, whose fields after 88.101 must be 1–128 digits" in answer["message"]
    r = await node.session.put(url(node, "0.NA/88.101.5"), json=[ADMIN_VALUE], headers=node.auth("88.101"))
    assert r.status == 201, await r.text()
    r = await node.session.put(url(node, "0.NA/88.102.x5"), json=[ADMIN_VALUE], headers=node.auth("88.102"))
    assert r.status == 201, await r.text()
    long_value = {"index": 2, "type": "DESCRIPTION", "data": "x" * 256}
    r = await node.session.put(url(node, "88.101/SN-0001.2024"), json=[URL_VALUE, long_value], headers=node.auth("88.101"))
    answer = await r.json()
    assert (r.status, answer["responseCode"]) == (400, 202)
    assert "value 2 (DESCRIPTION) is 256 characters long; the limit is 255" in answer["message"]
    r = await node.session.put(url(node, "88.101/SN-0001.2024"), json=[URL_VALUE], headers=node.auth("88.101"))
    assert r.status == 201
    r = await node.session.put(url(node, "88.102/SN-0001.2024"), json=[URL_VALUE, long_value], headers=node.auth("88.102"))
    assert r.status == 201


# --- encoded controls in the URL -----------------------------------------------------------------

CONTROL_PATHS = ["/api/handles/88.101/a%0Ab", "/api/handles/88.101/%0A", "/api/handles/88.101/a%0D%0Ab", "/api/handles/88.101/a%00b",
                 "/api/handles/88.101/a%1Fb?type=URL", "/api/handles/%0A"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("path", CONTROL_PATHS)
async def test_encoded_controls_in_a_handle_get_json(node, method, path):
    before = await snapshot(node.dsn)
    r = await node.session.request(method, raw(node, path), json=[URL_VALUE], headers=node.auth())
    assert r.content_type == "application/json"
    answer = await r.json()
    assert (r.status, answer["responseCode"]) == (400, 102), answer
    assert "control character" in answer["message"]
    assert await snapshot(node.dsn) == before


@pytest.mark.parametrize("method, path, status", [
    ("HEAD", "/api/handles/88.101/a%0Ab", 400), ("POST", "/api/handles/88.101/a%0Ab", 400),
    ("POST", "/api/prefixes/88%0A", 400), ("DELETE", "/api/prefixes/88%0A", 400),
    ("GET", "/api/site%0A", 404), ("GET", "/%0A", 404), ("GET", "/x%0Ay", 404),
])
async def test_encoded_controls_anywhere_get_the_json_error_shape(node, method, path, status):
    r = await node.session.request(method, raw(node, path), headers=node.auth())
    assert r.status == status
    assert r.content_type == "application/json"
    if method != "HEAD":
        assert isinstance((await r.json())["responseCode"], int)
