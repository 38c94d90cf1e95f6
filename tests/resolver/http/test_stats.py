"""The statistics API: /api/stats for a prefix's admins, /api/stats/report for the parent node (server
admins), their refusals, and the report's schema (docs/metrics.md)."""

from __future__ import annotations

from tests.nodes import InProcessNode, basic

URL_VALUE = {"index": 1, "type": "URL", "data": "https://example.org/"}


async def call(node, path, auth=None, **params):
    r = await node.session.get(node.url(path), headers=auth or {}, params=params)
    return r.status, await r.json(content_type=None)


async def test_prefix_statistics_and_the_upward_report(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, server_admins="300:88.101/ADMIN", node_name="sector.example") as node:
        await node.provision("88.101")
        other = await node.provision("88.102")
        for name in ("A", "B"):
            r = await node.session.put(node.url(f"/api/handles/88.101/{name}"), json=[URL_VALUE], headers=node.auth())
            assert r.status == 201
        for path in ("88.101/A", "88.101/A", "88.101/A", "88.101/B", "88.101/NOPE", "88.102/NOPE"):
            await node.session.get(node.url(f"/api/handles/{path}", secure=False))

        status, body = await call(node, "/api/stats", node.auth(), prefix="88.101")
        assert status == 200 and body["prefix"] == "88.101"
        assert body["total"] == {"resolutions": 4, "notFound": 1, "registrations": 2}
        assert len(body["hours"]) == 1 and body["hours"][0]["hour"].endswith(":00:00Z")

        status, body = await call(node, "/api/stats/report", node.auth())
        assert status == 200 and body["node"] == "sector.example" and body["from"] < body["to"]
        by_prefix = {p["prefix"]: p["total"] for p in body["prefixes"]}
        assert by_prefix == {"88.101": {"resolutions": 4, "notFound": 1, "registrations": 2},
                             "88.102": {"resolutions": 0, "notFound": 1, "registrations": 0}}

        stranger = basic(str(other.identity), other.secret)
        assert (await call(node, "/api/stats", stranger, prefix="88.101"))[0] == 403  # another prefix's admin
        assert (await call(node, "/api/stats/report", stranger))[0] == 403  # not a server admin
        assert (await call(node, "/api/stats", prefix="88.101"))[0] == 401


async def test_refusals_say_what_to_send(dsn, tmp_path):
    async with InProcessNode(dsn, tmp_path, server_admins="300:88.101/ADMIN") as node:
        await node.provision("88.101")
        cases = [({}, 102, "give the prefix"), ({"prefix": "88.101", "from": "yesterday"}, 4, "ISO 8601"),
                 ({"prefix": "88.101", "from": "2026-01-02", "to": "2026-01-01"}, 4, "before"),
                 ({"prefix": "88.101", "from": "2020-01-01", "to": "2026-01-01"}, 4, "ask for less")]
        for params, code, told in cases:
            status, body = await call(node, "/api/stats", node.auth(), **params)
            assert (status, body["responseCode"]) == (400, code) and told in body["message"], (params, body)
