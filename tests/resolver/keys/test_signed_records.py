"""Signed records (DESIGN.md decision 5) against real PostgreSQL and real nodes: every write path leaves
exactly one valid HS_SIGNATURE by the node's active key, keys are published on the prefix records, and
the renewal task re-signs what is due, a bounded batch at a time, under its advisory lock."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from registry.pg import db
from registry.jws import Jws, public_jwk
from registry.model import Handle, HandleValue, Record, ValueRef, fold
from registry.records import StoredRecord
from registry.signing import EVERYTHING, Permission, issue_certificate, signature_expiry, value_digest
from registry.pg.store import Store
from registry.trust import Status, TrustAnchor, verify
from registry.values import CERT, PUBKEY, SIGNATURE, jwk_to_pubkey
from resolver.keys.certification import child_permissions, install_certificate
from resolver.config import Settings
from resolver.core.authority import AuthoritySnapshot, CurrentAuthority
from resolver.resolution.engine import Engine
from resolver.keys.keyring import Keyring
from resolver.keys.publication import publish_keys
from resolver.ops.demo import seed_demo
from resolver.ops.provisioning import home_prefix, open_store
from resolver.keys.renewal import RENEWAL_LOCK, SignatureRenewer
from resolver.keys.sealing import NodeSealer
from resolver.keys.site import SiteDescription
from tests.nodes import InProcessNode

DEFAULT_LIFETIME = 30 * 86400
NOT_BEFORE_SKEW = 600
URL_VALUE = {"index": 1, "type": "URL", "data": "https://example.com/p/1"}
EMAIL_VALUE = {"index": 2, "type": "EMAIL", "data": "service@example.com"}
ADMIN_VALUE = {"index": 100, "type": "HS_ADMIN",
               "data": {"format": "admin", "value": {"handle": "0.NA/88.101", "index": 200, "permissions": "011111110011"}}}
SECRET_VALUE = {"index": 300, "type": "HS_SECKEY", "data": "s3cret", "permissions": "1100"}
DEADLINE = 10.0


# --- helpers -------------------------------------------------------------------------------------


def signatures(record: Record) -> list[HandleValue]:
    return [v for v in record.values if v.type_key == SIGNATURE]


def assert_signed(stored: StoredRecord | None, keyring: Keyring, prefix: str, *, lifetime: int = DEFAULT_LIFETIME,
                  now: float | None = None) -> dict:
    """Exactly one HS_SIGNATURE, by the active key as ``<index>:0.NA/<prefix>``, over the public values; its claims."""
    assert stored is not None
    record = stored.record
    found = signatures(record)
    assert len(found) == 1, f"{record.handle.text} has {len(found)} HS_SIGNATURE values"
    jws = Jws.parse(found[0].data.decode("ascii"))
    active = keyring.active
    assert jws.verify(keyring.public_key(active.kid)), "the signature does not verify with the active key"
    claims = jws.claims()
    assert claims["iss"] == f"{active.index}:0.NA/{prefix}"
    assert fold(claims["sub"]) == record.handle.key
    listed = claims["digests"]["digests"]
    assert claims["digests"]["alg"] == "SHA-256"
    assert len({d["index"] for d in listed}) == len(listed)
    expected = {v.index: value_digest(v) for v in record.values if v.public_read and v.type_key != SIGNATURE}
    assert {d["index"]: d["digest"] for d in listed} == expected
    assert claims["exp"] - claims["iat"] == lifetime
    assert claims["nbf"] == claims["iat"] - NOT_BEFORE_SKEW
    assert abs(claims["iat"] - (time.time() if now is None else now)) < 120
    assert stored.sig_expires == claims["exp"]
    return claims


def assert_unsigned(stored: StoredRecord | None) -> None:
    assert stored is not None
    assert signatures(stored.record) == []
    assert stored.sig_expires is None


def pubkeys(stored: StoredRecord) -> dict[int, bytes]:
    return {v.index: v.data for v in stored.record.values if v.type_key == PUBKEY}


def published(keyring: Keyring, *kids: str) -> dict[int, bytes]:
    by_kid = {e.kid: e for e in keyring.entries}
    return {by_kid[k].index: jwk_to_pubkey(public_jwk(keyring.public_key(k))) for k in kids}


async def call(node, method, path, **kwargs):
    headers = {**node.auth(), **kwargs.pop("headers", {})}
    r = await node.session.request(method, node.url(path), headers=headers, **kwargs)
    return r.status, await r.json(content_type=None)


async def until(condition, message: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        await asyncio.sleep(0.01)


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- every write path ----------------------------------------------------------------------------


async def test_create_replace_add_and_remove_each_sign_the_new_version(node, store):
    keyring = node.keyring
    status, _ = await call(node, "PUT", "/api/handles/88.101/SN-1", json=[URL_VALUE, EMAIL_VALUE, ADMIN_VALUE, SECRET_VALUE])
    assert status == 201
    created = await store.get("88.101/SN-1")
    claims = assert_signed(created, keyring, "88.101")
    assert claims["sub"] == "88.101/SN-1"
    assert signatures(created.record)[0].index == 400
    assert 300 not in {d["index"] for d in claims["digests"]["digests"]}  # the secret is not public: not covered

    status, _ = await call(node, "PUT", "/api/handles/88.101/SN-1", json=[{**URL_VALUE, "data": "https://new"}, ADMIN_VALUE])
    assert status == 200
    replaced = await store.get("88.101/SN-1")
    assert replaced.version == created.version + 1
    assert_signed(replaced, keyring, "88.101")
    assert signatures(replaced.record)[0].index == 400  # the signature keeps its index
    assert signatures(replaced.record)[0].data != signatures(created.record)[0].data

    status, _ = await call(node, "PUT", "/api/handles/88.101/SN-1?index=3", json=[{"index": 3, "type": "MODEL", "data": "WM-7030"}])
    assert status == 201
    added = await store.get("88.101/SN-1")
    claims = assert_signed(added, keyring, "88.101")
    assert {d["index"] for d in claims["digests"]["digests"]} == {1, 3, 100}

    status, _ = await call(node, "DELETE", "/api/handles/88.101/SN-1?index=3")
    assert status == 200
    removed = await store.get("88.101/SN-1")
    claims = assert_signed(removed, keyring, "88.101")
    assert {d["index"] for d in claims["digests"]["digests"]} == {1, 100}

    # what the node serves is the stored, signed version
    r = await node.session.get(node.url("/api/handles/88.101/SN-1", secure=False))
    served = [v for v in (await r.json())["values"] if v["type"] == "HS_SIGNATURE"]
    assert [v["data"]["value"] for v in served] == [signatures(removed.record)[0].data.decode()]


async def test_minted_handles_are_signed(node, store):
    status, body = await call(node, "PUT", "/api/handles/88.101/?mintNewSuffix=true", json=[URL_VALUE])
    assert status == 201
    claims = assert_signed(await store.get(fold(body["handle"])), node.keyring, "88.101")
    assert claims["sub"] == body["handle"]


async def test_signatures_sent_by_a_client_are_replaced_by_the_nodes(node, store):
    forged = {"index": 400, "type": "HS_SIGNATURE", "data": "eyJhbGciOiJFZERTQSJ9.e30.AAAA"}
    other = {"index": 401, "type": "HS_SIGNATURE", "data": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiI4OC4xMDEvRk9SR0VEIn0.AAAA"}
    status, _ = await call(node, "PUT", "/api/handles/88.101/FORGED", json=[URL_VALUE, forged, other])
    assert status == 201
    stored = await store.get("88.101/FORGED")
    assert_signed(stored, node.keyring, "88.101")
    assert signatures(stored.record)[0].data.decode() not in (forged["data"], other["data"])

    before = await store.get("88.101/FORGED")
    status, _ = await call(node, "PUT", "/api/handles/88.101/FORGED?index=405", json=[{**other, "index": 405}])
    assert status == 200  # the node owns HS_SIGNATURE: adding one changes nothing, so nothing is written
    stored = await store.get("88.101/FORGED")
    assert stored.version == before.version
    assert_signed(stored, node.keyring, "88.101")
    assert 405 not in {v.index for v in stored.record.values}


async def test_provisioned_admin_and_prefix_record_are_signed_and_carry_the_node_key(node, store):
    keyring = node.keyring
    admin = await store.get("88.101/ADMIN")
    claims = assert_signed(admin, keyring, "88.101")
    assert {d["index"] for d in claims["digests"]["digests"]} == {100}  # HS_ADMIN; the HS_SECKEY is private

    prefix = await store.get("0.NA/88.101")
    claims = assert_signed(prefix, keyring, "88.101")
    types = {v.index: v.type for v in prefix.record.values}
    assert {types[d["index"]] for d in claims["digests"]["digests"]} == {"HS_SITE", "HS_PUBKEY", "HS_VLIST", "HS_ADMIN"}
    assert pubkeys(prefix) == published(keyring, keyring.active.kid)


async def test_a_prefix_homed_over_http_is_signed_as_itself(dsn, tmp_path, store):
    async with InProcessNode(dsn, tmp_path, server_admins="300:88.101/ADMIN") as node:
        await node.provision("88.101")
        status, _ = await call(node, "POST", "/api/prefixes/88.200")
        assert status == 200
        record = await store.get("0.NA/88.200")
        assert_signed(record, node.keyring, "88.200")
        assert pubkeys(record) == published(node.keyring, node.keyring.active.kid)
        status, _ = await call(node, "PUT", "/api/handles/88.200/X", json=[URL_VALUE])
        assert status == 201
        assert_signed(await store.get("88.200/X"), node.keyring, "88.200")


async def test_operator_seeding_and_bulk_create_through_a_signing_store(dsn, tmp_path):
    settings = Settings.load(env={}, data_dir=tmp_path, dsn=dsn)
    keyring = Keyring(settings.keys_path)
    keyring.generate("ed25519", int(time.time()))
    pool = await db.create_pool(dsn, max_size=2)
    try:
        store = await open_store(settings, pool, keyring)
        assert isinstance(store.sealer, NodeSealer)
        await seed_demo(store, SiteDescription(settings), int(time.time()), count=20, keyring=keyring)
        seeded = await store.get_many([f"88.101.5/SN-{n:06d}" for n in range(1, 21)])
        assert len(seeded) == 20
        for record in seeded.values():
            assert_signed(record, keyring, "88.101.5")
        assert_signed(await store.get("88.101.5/ADMIN"), keyring, "88.101.5")
        assert_signed(await store.get("0.NA/88.101.5"), keyring, "88.101.5")

        now = int(time.time())
        batch = [Record(Handle.parse(f"88.101.5/B{n}"), (HandleValue(1, "URL", b"https://b", timestamp=now),)) for n in range(3)]
        batch.append(Record(Handle.parse("77.1/ELSEWHERE"), (HandleValue(1, "URL", b"https://e", timestamp=now),)))
        assert await store.bulk_create(batch) == 4
        for n in range(3):
            assert_signed(await store.get(f"88.101.5/B{n}"), keyring, "88.101.5")
        assert_unsigned(await store.get("77.1/ELSEWHERE"))  # not under a prefix homed here: not this node's to sign
    finally:
        await pool.close()


async def test_an_installed_certificate_is_signed_and_the_chain_verifies(dsn, tmp_path):
    now = int(time.time())
    parent = Keyring(tmp_path / "parent")
    parent.generate("ed25519", now)
    parent_key = parent.private_key(parent.active.kid)
    settings = Settings.load(env={}, data_dir=tmp_path / "child", dsn=dsn)
    keyring = Keyring(settings.keys_path)
    keyring.generate("ed25519", now)
    child = keyring.active
    pool = await db.create_pool(dsn, max_size=2)
    try:
        store = await open_store(settings, pool, keyring)
        await home_prefix(store, SiteDescription(settings), "88.101", now, keyring)
        root = ValueRef(300, "0.NA/88")
        subject = ValueRef(child.index, "0.NA/88.101")
        certificate = issue_certificate(parent_key, root, subject, keyring.public_key(child.kid), child_permissions("88.101"),
                                        iat=now, nbf=now - 600, exp=now + 86400)
        assert await install_certificate(store, keyring, store.sealer.authority.snapshot, certificate, now=now) == "0.NA/88.101"
        prefix = await store.get("0.NA/88.101")
        claims = assert_signed(prefix, keyring, "88.101")
        cert_values = [v for v in prefix.record.values if v.type_key == CERT]
        assert [v.data.decode() for v in cert_values] == [certificate]
        assert cert_values[0].index in {d["index"] for d in claims["digests"]["digests"]}

        product = Record(Handle.parse("88.101/P1"), (HandleValue(1, "URL", b"https://p", timestamp=now),))
        await store.create(product)
        self_signed = issue_certificate(parent_key, root, root, parent.public_key(parent.active.kid), [Permission(EVERYTHING)],
                                        iat=now, nbf=now - 600, exp=now + 86400)
        records = {
            "0.NA/88.101": prefix.record.values,
            "0.NA/88": (HandleValue(400, CERT, self_signed.encode(), timestamp=now),),
        }
        anchor = TrustAnchor((parent.public_key(parent.active.kid),), "0.NA/88")
        for handle in ("0.NA/88.101", "88.101/P1"):
            values = (await store.get(fold(handle))).record.values
            report = verify(handle, values, anchor, now, records.get)
            assert report.ok, report
            assert set(report.values.values()) == {Status.VALID}
            assert [link.issuer for link in report.signatures[0].chain] == [f"{child.index}:0.NA/88.101", "300:0.NA/88", "300:0.NA/88"]
    finally:
        await pool.close()


async def test_a_node_with_signing_off_writes_no_signature(dsn, tmp_path, store):
    async with InProcessNode(dsn, tmp_path, signing=False) as node:
        assert node.keyring is None and node.node.store.sealer is None
        await node.provision("88.101")
        status, _ = await call(node, "PUT", "/api/handles/88.101/PLAIN", json=[URL_VALUE])
        assert status == 201
        assert_unsigned(await store.get("88.101/PLAIN"))
        assert_unsigned(await store.get("88.101/ADMIN"))
        prefix = await store.get("0.NA/88.101")
        assert_unsigned(prefix)
        assert pubkeys(prefix) == {}
        assert not (tmp_path / "keys").exists()  # no key was made either


# --- publishing keys -----------------------------------------------------------------------------


async def test_publish_keys_adds_pending_keys_and_drops_retired_ones_once_their_signatures_are_dead(dsn, tmp_path):
    lifetime = 7 * 86400
    t0 = int(time.time())
    settings = Settings.load(env={}, data_dir=tmp_path, dsn=dsn, signature_lifetime=lifetime, signature_renew_before=3600)
    keyring = Keyring(settings.keys_path)
    first = keyring.generate("ed25519", t0)
    other = Keyring(tmp_path / "foreign")
    other_key = other.generate("ed25519", t0)
    foreign = HandleValue(500, PUBKEY, published(other, other_key.kid)[300], timestamp=t0)
    pool = await db.create_pool(dsn, max_size=2)
    try:
        store = await open_store(settings, pool, keyring)
        site = SiteDescription(settings)
        for prefix in ("88.101", "88.102"):
            await home_prefix(store, site, prefix, t0, keyring, lifetime)
            assert pubkeys(await store.get(f"0.NA/{prefix}")) == published(keyring, first.kid)
        stored = await store.get("0.NA/88.102")
        await store.replace(stored.record.with_values([*stored.record.values, foreign]), stored.version)
        assert await publish_keys(store, keyring, t0, lifetime) == 0  # already in line

        second = keyring.generate("ed25519", t0 + 10)
        assert second.state == "pending"
        assert await publish_keys(store, keyring, t0 + 10, lifetime) == 2
        for prefix in ("88.101", "88.102"):
            record = await store.get(f"0.NA/{prefix}")
            assert {i: d for i, d in pubkeys(record).items() if i != 500} == published(keyring, first.kid, second.kid)
            assert assert_signed(record, keyring, prefix, lifetime=lifetime)["iss"] == f"{first.index}:0.NA/{prefix}"
        assert await publish_keys(store, keyring, t0 + 10, lifetime) == 0

        keyring.rotate(t0 + 20)
        assert await publish_keys(store, keyring, t0 + 20 + lifetime - 1, lifetime) == 0  # its signatures may live yet
        assert await publish_keys(store, keyring, t0 + 20 + lifetime + 1, lifetime) == 2
        for prefix in ("88.101", "88.102"):
            record = await store.get(f"0.NA/{prefix}")
            assert {i: d for i, d in pubkeys(record).items() if i != 500} == published(keyring, second.kid)
            assert assert_signed(record, keyring, prefix, lifetime=lifetime)["iss"] == f"{second.index}:0.NA/{prefix}"
            assert "HS_SITE" in {v.type for v in record.record.values}
        assert pubkeys(await store.get("0.NA/88.102"))[500] == foreign.data  # not one of ours: left alone
    finally:
        await pool.close()


# --- renewal -------------------------------------------------------------------------------------

LIFETIME = 10 * 86400
RENEW_BEFORE = 86400
T0 = 1_900_000_000


@pytest.fixture
async def signer(dsn, tmp_path):
    """A signing store on an injected clock, with 88.101 homed at T0; and a plain store to write unsigned rows."""
    clock = Clock(T0)
    keyring = Keyring(tmp_path / "keys")
    keyring.generate("ed25519", T0)
    pool = await db.create_pool(dsn, max_size=6)
    prefixes = CurrentAuthority()
    sealer = NodeSealer(keyring, prefixes, LIFETIME)
    store = Store(pool, sealer, clock=clock)
    settings = Settings.load(env={}, data_dir=tmp_path, dsn=dsn)
    site = SiteDescription(settings)
    await home_prefix(store, site, "88.101", T0, keyring, LIFETIME)
    engine = Engine(store, prefixes)

    def renewer(batch: int = 100, store_: Store = store) -> SignatureRenewer:
        return SignatureRenewer(pool, store_, sealer, engine.invalidate, renew_before=RENEW_BEFORE, batch=batch, interval=60, clock=clock)

    yield SimpleNamespace(clock=clock, keyring=keyring, pool=pool, prefixes=prefixes, sealer=sealer, store=store, site=site,
                          plain=Store(pool), engine=engine, renewer=renewer)
    await pool.close()


def product(text: str, at: int) -> Record:
    return Record(Handle.parse(text), (HandleValue(1, "URL", f"https://example.com/{text}".encode(), timestamp=at),))


def without_signature(stored: StoredRecord) -> list[HandleValue]:
    return [v for v in stored.record.values if v.type_key != SIGNATURE]


async def test_renewal_re_signs_records_due_within_the_window_and_unsigned_ones_only(signer):
    s = signer
    await s.store.create(product("88.101/EARLY", T0))  # expires T0 + LIFETIME
    s.clock.now = T0 + LIFETIME // 2
    await s.store.create(product("88.101/LATE", s.clock.now))  # expires T0 + 1.5 LIFETIME
    await s.plain.create(product("88.101/UNSIGNED", T0))
    before = {k: await s.store.get(k) for k in ("88.101/EARLY", "88.101/LATE", "88.101/UNSIGNED", "0.NA/88.101")}
    assert_unsigned(before["88.101/UNSIGNED"])
    await s.engine.resolve(Handle.parse("88.101/EARLY"))
    assert s.engine.lookup("88.101/EARLY") is not None

    renewer = s.renewer()
    s.clock.now = T0 + LIFETIME - RENEW_BEFORE - 1  # EARLY expires just after the window
    assert await renewer.tick() == 1
    assert_signed(await s.store.get("88.101/UNSIGNED"), s.keyring, "88.101", lifetime=LIFETIME, now=s.clock.now)
    assert (await s.store.get("88.101/EARLY")).version == before["88.101/EARLY"].version

    s.clock.now = T0 + LIFETIME - RENEW_BEFORE + 1  # now EARLY (and the prefix record, signed at T0) are due
    assert await renewer.tick() == 2
    for key in ("88.101/EARLY", "0.NA/88.101"):
        after = await s.store.get(key)
        claims = assert_signed(after, s.keyring, "88.101", lifetime=LIFETIME, now=s.clock.now)
        assert claims["iat"] == s.clock.now and after.sig_expires == s.clock.now + LIFETIME
        assert after.version == before[key].version + 1
        assert without_signature(after) == without_signature(before[key])  # only the signature changed
    late = await s.store.get("88.101/LATE")
    assert (late.version, late.vals) == (before["88.101/LATE"].version, before["88.101/LATE"].vals)
    assert s.engine.lookup("88.101/EARLY") is None  # the cached old version was dropped
    assert renewer.renewed == 3
    assert await renewer.tick() == 0


async def test_renewal_does_at_most_one_batch_per_tick(signer):
    s = signer
    for n in range(5):
        await s.plain.create(product(f"88.101/U{n}", T0))
    renewer = s.renewer(batch=2)
    assert [await renewer.tick() for _ in range(4)] == [2, 2, 1, 0]
    for n in range(5):
        assert_signed(await s.store.get(f"88.101/U{n}"), s.keyring, "88.101", lifetime=LIFETIME, now=T0)


async def test_renewal_takes_unsigned_records_first_then_the_soonest_to_expire(signer):
    s = signer
    s.clock.now = T0 - 100
    await s.store.create(product("88.101/SOONER", s.clock.now))  # expires 100 s before 0.NA/88.101
    await s.plain.create(product("88.101/UNSIGNED", T0))
    keys = ("88.101/UNSIGNED", "88.101/SOONER", "0.NA/88.101")
    versions = {k: (await s.store.get(k)).version for k in keys}
    s.clock.now = T0 + LIFETIME  # all three are due
    renewer = s.renewer(batch=1)
    for n in range(len(keys)):
        assert await renewer.tick() == 1
        now = {k: (await s.store.get(k)).version for k in keys}
        assert [now[k] - versions[k] for k in keys] == [1] * (n + 1) + [0] * (len(keys) - n - 1)
    assert await renewer.tick() == 0


async def test_records_this_node_does_not_sign_stay_out_of_the_queue_and_are_not_re_signed(signer):
    s = signer
    await home_prefix(s.store, s.site, "88.102", T0, s.keyring, LIFETIME)
    await s.store.create(product("88.102/GONE", T0))
    assert_signed(await s.store.get("88.102/GONE"), s.keyring, "88.102", lifetime=LIFETIME, now=T0)
    assert await s.store.unhome("88.102")
    s.prefixes.replace(AuthoritySnapshot(await s.store.homed_prefixes()))
    await s.plain.create(product("77.1/FOREIGN", T0))
    before = {k: await s.store.get(k) for k in ("88.102/GONE", "0.NA/88.102", "77.1/FOREIGN")}

    s.clock.now = T0 + LIFETIME  # every signature made at T0 is due
    renewer = s.renewer()
    assert await renewer.tick() == 1  # 0.NA/88.101 only
    assert_signed(await s.store.get("0.NA/88.101"), s.keyring, "88.101", lifetime=LIFETIME, now=s.clock.now)
    for key, old in before.items():
        now = await s.store.get(key)
        assert (now.version, now.vals, now.sig_expires) == (old.version, old.vals, old.sig_expires), key  # untouched
    due = await s.store.due_for_signing(s.clock.now + RENEW_BEFORE, 100)
    assert not set(due) & set(before)
    assert await renewer.tick() == 0


async def test_records_of_a_prefix_homed_again_are_renewed_before_their_signatures_expire(signer):
    """Left alone while the prefix was away, a record must not keep an expiring signature once it is back."""
    s = signer
    await home_prefix(s.store, s.site, "88.102", T0, s.keyring, LIFETIME)
    await s.store.create(product("88.102/BACK", T0))  # signed at T0: expires at T0 + LIFETIME
    assert await s.store.unhome("88.102")
    s.prefixes.replace(AuthoritySnapshot(await s.store.homed_prefixes()))
    renewer = s.renewer()
    s.clock.now = T0 + LIFETIME - RENEW_BEFORE + 1
    await renewer.tick()  # while away: left alone
    assert (await s.store.get("88.102/BACK")).version == 1

    await home_prefix(s.store, s.site, "88.102", s.clock.now, s.keyring, LIFETIME)  # back home
    s.clock.now = T0 + LIFETIME - 60  # its signature expires in a minute: due by any reading
    await renewer.tick()
    back = await s.store.get("88.102/BACK")
    exp = signature_expiry(back.record.values)
    assert exp > T0 + LIFETIME, f"not renewed: its signature expires at T0 + {exp - T0} (sig_expires says T0 + {back.sig_expires - T0})"
    assert_signed(back, s.keyring, "88.102", lifetime=LIFETIME, now=s.clock.now)


class BlockingStore(Store):
    """A store whose renewal query waits for a signal: a renewer caught in the middle of its tick."""

    def __init__(self, pool, sealer, clock) -> None:
        super().__init__(pool, sealer, clock)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def due_for_signing(self, before: int, limit: int) -> list[str]:
        self.entered.set()
        await self.release.wait()
        return await super().due_for_signing(before, limit)


async def test_only_the_renewer_holding_the_advisory_lock_ticks(signer):
    s = signer
    await s.plain.create(product("88.101/UNSIGNED", T0))
    blocking = BlockingStore(s.pool, s.sealer, s.clock)
    leader, other = s.renewer(store_=blocking), s.renewer()
    running = asyncio.create_task(leader.tick_if_leader())
    try:
        await asyncio.wait_for(blocking.entered.wait(), DEADLINE)

        async def lock_held() -> bool:
            return await s.pool.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted", RENEWAL_LOCK) == 1

        await until(lock_held, "the leader does not hold the renewal lock")
        assert await other.tick_if_leader() is None
        assert_unsigned(await s.store.get("88.101/UNSIGNED"))  # the other one did nothing
    finally:
        blocking.release.set()
        result = await asyncio.wait_for(running, DEADLINE)
    assert result == 1
    assert_signed(await s.store.get("88.101/UNSIGNED"), s.keyring, "88.101", lifetime=LIFETIME, now=T0)
    assert await other.tick_if_leader() == 0  # the lock is free again


# --- rotation and the cache ----------------------------------------------------------------------


async def test_a_rotation_by_another_process_signs_the_next_write_with_the_new_key(node, store):
    status, _ = await call(node, "PUT", "/api/handles/88.101/R1", json=[URL_VALUE])
    assert status == 201
    old = node.keyring.active
    assert assert_signed(await store.get("88.101/R1"), node.keyring, "88.101")["iss"] == f"{old.index}:0.NA/88.101"

    elsewhere = Keyring(node.settings.keys_path)  # as `idres keys generate` / `idres keys rotate` would
    new = elsewhere.generate("ed25519", int(time.time()))
    elsewhere.rotate(int(time.time()))
    assert new.index != old.index

    status, _ = await call(node, "PUT", "/api/handles/88.101/R2", json=[URL_VALUE])
    assert status == 201
    claims = assert_signed(await store.get("88.101/R2"), elsewhere, "88.101")
    assert claims["iss"] == f"{new.index}:0.NA/88.101"
    status, _ = await call(node, "PUT", "/api/handles/88.101/R1", json=[{**URL_VALUE, "data": "https://again"}])
    assert status == 200
    assert assert_signed(await store.get("88.101/R1"), elsewhere, "88.101")["iss"] == f"{new.index}:0.NA/88.101"
    assert node.node.keyring.active.kid == new.kid


async def test_the_cache_hit_path_serves_the_signed_record_bytes_untouched(node, store):
    status, _ = await call(node, "PUT", "/api/handles/88.101/HOT", json=[URL_VALUE, EMAIL_VALUE])
    assert status == 201
    signature = signatures((await store.get("88.101/HOT")).record)[0].data.decode()
    await node.settled()
    url = node.url("/api/handles/88.101/HOT", secure=False)
    first = await node.session.get(url)
    first_body = await first.read()
    hits = node.node.engine.hits
    second = await node.session.get(url)
    second_body = await second.read()
    assert node.node.engine.hits == hits + 1  # served from the cache
    assert second_body == first_body
    assert signature.encode() in second_body
    for r in (first, second):
        assert not {"Signature", "Signature-Input", "Content-Digest"} & set(r.headers)


async def test_renewal_rewrites_keys_of_the_old_layout_in_handle_nets_and_signs_those_bytes(signer):
    from registry.signing import value_digest
    from tests.registry.fixtures.handle_net_encodings import HS_PUBKEY, HS_PUBKEY_WITHOUT_TRAILER

    s = signer
    old = Record(Handle.parse("88.101/KEYHOLDER"), (HandleValue(300, PUBKEY, HS_PUBKEY_WITHOUT_TRAILER, timestamp=T0),))
    await s.plain.create(old)  # written before the layout changed, and not signed since
    assert await s.renewer().tick() >= 1
    renewed = await s.store.get("88.101/KEYHOLDER")
    assert renewed.record.value_at(300).data == HS_PUBKEY  # 289 bytes now, as Handle.Net writes them
    claims = assert_signed(renewed, s.keyring, "88.101", lifetime=LIFETIME, now=T0)
    digest = {d["index"]: d["digest"] for d in claims["digests"]["digests"]}[300]
    assert digest == value_digest(renewed.record.value_at(300))
