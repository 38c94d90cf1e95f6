"""What a mirror checks before it applies a record (resolver/replication/checks.py, seals.py, wire.py): chunk
seals up to the trust root, records one by one, the scope of the mirror; and the wire forms."""

from __future__ import annotations

import dataclasses
import hashlib

import orjson
import pytest

from registry.errors import UpstreamInvalid
from registry.model import Handle, HandleValue, Record
from registry.pg.feed import RecordRow
from registry.records import StoredRecord
from registry.signing import RecordSigner
from registry.trust import SignatureMemo
from resolver.replication import seals
from resolver.replication.checks import RecordChecks
from resolver.replication.follower import backoff
from resolver.replication.wire import ChunkInfo, parse_page, parse_record, record_json
from tests.registry.test_trust import ANCHOR, ENTERPRISE, ENTERPRISE_ID, NOW, ROGUE, World, records, sign

PREFIX = "88.101.5"
SEALER = RecordSigner(ENTERPRISE, lambda handle: ENTERPRISE_ID, lifetime=86400)


def row_of(values: list[HandleValue], text: str = f"{PREFIX}/SN-1") -> RecordRow:
    stored = StoredRecord.from_record(Record(Handle.parse(text), tuple(values)))
    return RecordRow(Handle.parse(text).key, text, stored.vals, stored.public_json, stored.min_ttl, stored.expires_at, stored.sig_expires)


def signed_row(text: str, url: bytes = b"https://example.org/1", key=ENTERPRISE) -> RecordRow:
    return row_of(sign(text, [HandleValue(1, "URL", url, timestamp=NOW)], key, ENTERPRISE_ID, iat=NOW - 60), text)


def checks(anchor=ANCHOR, **kw) -> RecordChecks:
    world = World(records())

    async def remote(handle: Handle):
        return world.fetch(handle.text)

    return RecordChecks(PREFIX, anchor, remote, clock=lambda: NOW, **kw)


def chunk_for(rows: list[RecordRow], cursor: int = 42, sealer=SEALER, prefix: str = PREFIX) -> ChunkInfo:
    digest = hashlib.sha256(b"".join(orjson.dumps(record_json(r)) + b"\n" for r in rows)).hexdigest()
    chunk = ChunkInfo(prefix, 1, len(rows), digest)
    return ChunkInfo(prefix, 1, len(rows), digest, seals.seal(sealer, chunk, cursor, NOW))


async def test_a_sealed_chunk_is_vouched_for_by_one_signature_up_to_the_root():
    garbage = RecordRow(f"{PREFIX}/JUNK", f"{PREFIX}/JUNK", b"not even values", b"[]", 0, None, None)  # never decoded
    rows = [signed_row(f"{PREFIX}/SN-1"), garbage]
    chunk = chunk_for(rows)
    assert await seals.check(chunk, 42, ANCHOR, NOW, World(records()).afetch, SignatureMemo()) is None
    verdicts, sealed = await checks().chunk(chunk, 42, rows)
    assert sealed and verdicts == [(rows[0], None), (garbage, None)]


@pytest.mark.parametrize("change", ["sha256", "records", "cursor", "number"])
async def test_a_seal_covers_the_digest_the_size_and_the_place_of_its_chunk(change):
    rows = [signed_row(f"{PREFIX}/SN-1")]
    chunk = chunk_for(rows)
    altered = {"sha256": ChunkInfo(PREFIX, 1, 1, "0" * 64, chunk.seal), "records": ChunkInfo(PREFIX, 1, 2, chunk.sha256, chunk.seal),
               "number": ChunkInfo(PREFIX, 2, 1, chunk.sha256, chunk.seal), "cursor": chunk}[change]
    problem = await seals.check(altered, 43 if change == "cursor" else 42, ANCHOR, NOW, World(records()).afetch,
                                SignatureMemo())
    assert problem == "the seal does not cover the chunk"


async def test_without_a_valid_seal_every_record_is_checked_and_a_forged_one_refused():
    good, forged = signed_row(f"{PREFIX}/SN-1"), signed_row(f"{PREFIX}/SN-2", key=ROGUE)
    for chunk in (chunk_for([good, forged], sealer=None), chunk_for([good, forged], sealer=RecordSigner(ROGUE, lambda h: ENTERPRISE_ID, lifetime=60)),
                  chunk_for([good, forged], prefix="88.101")):
        verdicts, sealed = await checks().chunk(chunk, 42, [good, forged])
        assert not sealed and verdicts[0] == (good, None)
        assert verdicts[1][0] is None and "does not verify" in verdicts[1][1]
    verdicts, sealed = await checks(seals_suffice=False).chunk(chunk_for([good]), 42, [good])  # IDRES_MIRROR_VERIFY=records
    assert not sealed and verdicts == [(good, None)]


async def test_a_record_is_checked_for_its_scope_and_signatures_and_its_derived_columns_recomputed():
    good = signed_row(f"{PREFIX}/SN-1")
    lying = RecordRow(good.key, good.spelled, good.vals, b"[]", 1, None, None)  # public JSON that is not its values'
    assert await checks().record(lying, {}) == (good, None)
    assert (await checks().record(signed_row("88.101/SN-1"), {}))[1] == "88.101/SN-1 is not under 88.101.5"
    tampered = dataclasses.replace(good, vals=good.vals.replace(b"example.org/1", b"example.org/9"))
    row, problem = await checks().record(tampered, {})
    assert row is None and "bad digest" in problem
    assert await checks(anchor=None).record(lying, {}) == (lying, None)  # no trust root: nothing is verified
    unsigned = row_of([HandleValue(1, "URL", b"https://x", timestamp=NOW)])
    assert (await checks().record(unsigned, {}))[1] == "it carries no HS_SIGNATURE"


def test_records_travel_byte_for_byte():
    good = signed_row(f"{PREFIX}/SN-1")
    assert parse_record(record_json(good)) == good
    with pytest.raises(UpstreamInvalid, match="not base64"):
        parse_record({**record_json(good), "values": "***"})
    with pytest.raises(UpstreamInvalid, match="no publicJson"):
        parse_record({k: v for k, v in record_json(good).items() if k != "publicJson"})


def test_a_page_out_of_order_is_refused():
    change = {"cursor": 5, "handle": "88.101/A", "op": "delete", "record": None}
    assert parse_page({"changes": [change], "next": 5, "more": False, "head": 9}).next_cursor == 5
    with pytest.raises(UpstreamInvalid, match="out of order"):
        parse_page({"changes": [change, {**change, "cursor": 4}], "next": 5, "more": False, "head": 9})
    with pytest.raises(UpstreamInvalid, match="not a page"):
        parse_page({"changes": "x"})


def test_backoff_doubles_up_to_its_ceiling_with_jitter():
    assert [backoff(n, 60, rng=lambda: 1.0) for n in (1, 2, 3, 8, 20)] == [0.5, 1.0, 2.0, 60, 60]
    assert backoff(3, 60, rng=lambda: 0.0) == 1.0  # half of it at the least


async def test_a_certificate_that_cannot_be_fetched_rejects_nothing_and_is_asked_again():
    from registry.errors import UpstreamUnavailable

    async def unreachable(handle: Handle):
        raise UpstreamUnavailable("no node serving 88.101 answered")

    with pytest.raises(UpstreamUnavailable, match="could not be fetched to verify records"):
        await RecordChecks(PREFIX, ANCHOR, unreachable, clock=lambda: NOW).record(signed_row(f"{PREFIX}/SN-1"), {})
