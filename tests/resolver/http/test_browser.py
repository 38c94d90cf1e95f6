"""The browser front, with a real node: /<handle> redirects, shows the record's public values as a page,
or gives the REST answer, as the client asks; / has the lookup form; paths that are not handles keep
their JSON 404."""

from __future__ import annotations

import json

from tests.nodes import InProcessNode

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
LOC = ('<locations><location id="0" href="javascript:alert(1)"/>'
       '<location id="1" href="https://loc.example.com/SN-7?from=loc&amp;x=1" weight="1"/></locations>')


async def put(node, handle: str, values: list[dict]) -> None:
    async with node.session.put(node.url(f"/api/handles/{handle}"), json=values, headers=node.auth()) as r:
        assert r.status in (200, 201), await r.text()


async def get(node, path: str, accept: str | None = None, **kwargs):
    headers = {"Accept": accept} if accept else {}
    async with node.session.get(node.url(path, secure=False), headers=headers, allow_redirects=False, **kwargs) as r:
        return r.status, r.headers, await r.text()


async def test_a_handle_redirects_to_its_lowest_url_value(node):
    await put(node, "88.101/SN-1", [{"index": 2, "type": "URL", "data": "https://b.example/2"},
                                    {"index": 1, "type": "URL", "data": "https://a.example/1"}])
    for accept in (None, "*/*", BROWSER):
        status, headers, _ = await get(node, "/88.101/SN-1", accept)
        assert (status, headers["Location"]) == (302, "https://a.example/1")
        assert headers["Cache-Control"].startswith("max-age=")
    status, headers, _ = await get(node, "/88.101/sn-1")  # case-insensitive, as resolution is
    assert (status, headers["Location"]) == (302, "https://a.example/1")
    async with node.session.head(node.url("/88.101/SN-1", secure=False), allow_redirects=False) as r:
        assert (r.status, r.headers["Location"]) == (302, "https://a.example/1")


async def test_10320_loc_comes_before_the_url_value(node):
    await put(node, "88.101/SN-7", [{"index": 1, "type": "URL", "data": "https://url.example/SN-7"},
                                    {"index": 2, "type": "10320/loc", "data": LOC}])
    status, headers, _ = await get(node, "/88.101/SN-7")
    assert (status, headers["Location"]) == (302, "https://loc.example.com/SN-7?from=loc&x=1")


async def test_the_page_shows_public_values_escaped_and_the_signature_status(node):
    await put(node, "88.101/XSS", [
        {"index": 1, "type": "URL", "data": "https://a.example/1"},
        {"index": 2, "type": "NOTE", "data": "<script>alert('x')</script> & \"quotes\""},
        {"index": 3, "type": "<b>TYPE</b>", "data": "t"},
        {"index": 4, "type": "SECRET", "data": "hidden-value", "permissions": "1100"},
    ])
    for path, accept in (("/88.101/XSS?noredirect", BROWSER), ("/88.101/XSS", "text/html")):
        status, headers, page = await get(node, path, accept)
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        assert "<script" not in page
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in page
        assert "&lt;b&gt;TYPE&lt;/b&gt;" in page
        assert "hidden-value" not in page and "SECRET" not in page  # public values only
        assert '<a href="https://a.example/1" rel="nofollow noopener">' in page
        assert '<a href="/88.101/XSS" id="target">Go to https://a.example/1</a>' in page
        assert 'class="status unchecked"' in page and "no trust root configured" in page
        assert "default-src 'none'" in headers["Content-Security-Policy"]


async def test_the_page_says_when_a_record_is_not_signed(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, signing=False) as unsigned:
        await unsigned.provision("88.101")
        await put(unsigned, "88.101/PLAIN", [{"index": 1, "type": "URL", "data": "https://a.example/1"}])
        status, _, page = await get(unsigned, "/88.101/PLAIN?noredirect")
    assert status == 200 and 'class="status unsigned"' in page and "carries no HS_SIGNATURE" in page


async def test_json_clients_get_the_rest_answer(node):
    await put(node, "88.101/J", [{"index": 1, "type": "URL", "data": "https://a.example/1"}])
    async with node.session.get(node.url("/api/handles/88.101/J", secure=False)) as r:
        rest = await r.json()
    for accept in ("application/json", "application/json, text/html;q=0.5"):
        status, headers, body = await get(node, "/88.101/J", accept)
        assert status == 200 and headers["Content-Type"] == "application/json;charset=UTF-8"
        assert json.loads(body) == rest
    status, _, body = await get(node, "/88.101/NOPE", "application/json")
    assert (status, body) == (404, '{"responseCode":100,"handle":"88.101/NOPE"}')


async def test_what_cannot_be_redirected_is_a_page_for_browsers_and_json_for_the_others(node):
    await put(node, "88.101/NOURL", [{"index": 1, "type": "MODEL", "data": "WM-7030"}])
    status, headers, page = await get(node, "/88.101/NOURL", BROWSER)
    assert status == 200 and "WM-7030" in page and 'id="target"' not in page
    status, headers, body = await get(node, "/88.101/NOURL")
    assert status == 200 and headers["Content-Type"].startswith("application/json") and '"WM-7030"' in body
    status, _, page = await get(node, "/88.101/NOPE", BROWSER)
    assert status == 404 and "Handle not found" in page and "There is no handle 88.101/NOPE." in page
    status, _, body = await get(node, "/88.101/NOPE")
    assert (status, body) == (404, '{"responseCode":100,"handle":"88.101/NOPE"}')
    status, _, page = await get(node, "/77.1/X", BROWSER)
    assert status == 400 and "Not served here" in page and "responseCode 301" in page


async def test_paths_that_are_not_handles_keep_the_json_404(node):
    for path in ("/favicon.ico", "/robots.txt", "/api/nothing/here", "/api/handles-x/1", "/88.101/%FF"):
        status, headers, body = await get(node, path, BROWSER)
        assert status == 404 and headers["Content-Type"] == "application/json;charset=UTF-8", path
        assert body.startswith('{"responseCode":4,"message":"Unknown HTTP API endpoint GET ')
    async with node.session.post(node.url("/88.101/SN-1", secure=False)) as r:
        assert r.status == 404 and (await r.json())["responseCode"] == 4
    async with node.session.post(node.url("/", secure=False)) as r:
        assert r.status == 404 and (await r.json())["responseCode"] == 4


async def test_the_home_page_and_its_form(node):
    status, headers, page = await get(node, "/", BROWSER)
    assert status == 200 and '<form action="/" method="get" id="lookup">' in page and 'name="hdl"' in page
    status, headers, _ = await get(node, "/?hdl=88.101/SN%201%3Fx")
    assert (status, headers["Location"]) == (302, "/88.101/SN%201%3Fx")
    status, headers, _ = await get(node, "/?hdl=+88.101/SN-1+&noredirect=on")
    assert (status, headers["Location"]) == (302, "/88.101/SN-1?noredirect")
