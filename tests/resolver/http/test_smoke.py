async def test_create_and_resolve(node):
    s = node.session
    r = await s.put(node.url("/api/handles/88.101/ABC"), json={"values": [{"index": 1, "type": "URL", "data": "https://x"}]}, headers=node.auth())
    assert r.status == 201, await r.text()
    r = await s.get(node.url("/api/handles/88.101/abc", secure=False))
    body = await r.json()
    assert body["handle"] == "88.101/abc"
    assert body["values"][0]["data"] == {"format": "string", "value": "https://x"}
