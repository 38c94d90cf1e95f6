"""HS_PUBKEY and HS_SITE as Handle.Net encodes them (vectors/handle-net-encodings.md): idres writes the
known answers byte for byte, reads them back (and the older layout without the int4 0), and an
HS_SIGNATURE's digests over them are the digests of exactly these bytes."""

from __future__ import annotations

import orjson
import pytest

from registry.encoding import DecodeError
from registry.jws import Jws, public_jwk
from registry.model import Handle, HandleValue, Record, ValueRef
from registry.pubkeys import canonical_pubkey, jwk_to_pubkey, load_pubkey, pubkey_to_jwk
from registry.signing import RecordSigner
from registry.validation import check_value
from registry.value_json import parse_value, value_to_json
from registry.values import TRANSPORTS, Interface, Server, SiteInfo
from tests.registry.fixtures import ED_A, RSA_PREFIX
from tests.registry.fixtures.handle_net_encodings import HS_PUBKEY, HS_PUBKEY_WITHOUT_TRAILER, HS_SITE, digest_by_hand

T0 = 1_800_000_000
VECTOR_SITE = SiteInfo(
    servers=(Server(1, "127.0.0.1", HS_PUBKEY, (
        Interface(TRANSPORTS["UDP"], 2641, query=True, admin=False),
        Interface(TRANSPORTS["HTTPS"], 8443, query=True, admin=True),
    )),),
    attributes=(("desc", "idres test site"),),
)


def test_hs_pubkey_is_written_as_handle_net_writes_it():
    data = jwk_to_pubkey(public_jwk(RSA_PREFIX))
    assert len(data) == 289
    assert data == HS_PUBKEY


@pytest.mark.parametrize("data", [HS_PUBKEY, HS_PUBKEY_WITHOUT_TRAILER], ids=["handle-net", "without-int4-0"])
def test_hs_pubkey_is_read_in_either_layout(data):
    assert pubkey_to_jwk(data) == public_jwk(RSA_PREFIX)
    assert load_pubkey(data).public_numbers() == RSA_PREFIX.public_key().public_numbers()
    assert canonical_pubkey(data) == HS_PUBKEY  # one key, one canonical form
    check_value(HandleValue(300, "HS_PUBKEY", data))  # both may be stored as they are


@pytest.mark.parametrize("tail", [b"\x00", b"\x00\x00\x00\x01", bytes(8)])
def test_only_an_int4_0_may_follow_the_modulus(tail):
    with pytest.raises(DecodeError, match="unexpected bytes"):
        pubkey_to_jwk(HS_PUBKEY_WITHOUT_TRAILER + tail)


def test_ed25519_keys_keep_idres_own_encoding():
    data = jwk_to_pubkey(public_jwk(ED_A))
    assert data.startswith(b"\x00\x00\x00\x0fEd25519_PUB_KEY\x00\x00\x00\x00\x00\x20") and len(data) == 4 + 15 + 2 + 4 + 32
    assert pubkey_to_jwk(data) == public_jwk(ED_A)
    assert canonical_pubkey(data) == data
    check_value(HandleValue(300, "HS_PUBKEY", data))


def test_hs_site_is_written_as_handle_net_writes_it():
    assert VECTOR_SITE.to_bytes() == HS_SITE
    assert SiteInfo.from_bytes(HS_SITE) == VECTOR_SITE
    check_value(HandleValue(1, "HS_SITE", HS_SITE))


def test_hs_site_json_carries_the_key_and_comes_back_byte_identical():
    value = HandleValue(1, "HS_SITE", HS_SITE, timestamp=T0)
    shown = value_to_json(value)["data"]
    assert shown["format"] == "site"
    server = shown["value"]["servers"][0]
    assert server["publicKey"] == {"format": "key", "value": public_jwk(RSA_PREFIX)}
    assert [(i["protocol"], i["port"], i["query"], i["admin"]) for i in server["interfaces"]] == [
        ("UDP", 2641, True, False), ("HTTPS", 8443, True, True)]
    assert parse_value(orjson.loads(orjson.dumps({"index": 1, "type": "HS_SITE", "data": shown}))).data == HS_SITE


def test_hs_pubkey_json_comes_back_in_handle_net_layout():
    shown = value_to_json(HandleValue(300, "HS_PUBKEY", HS_PUBKEY, timestamp=T0))["data"]
    assert shown == {"format": "key", "value": public_jwk(RSA_PREFIX)}
    assert parse_value({"index": 300, "type": "HS_PUBKEY", "data": shown}).data == HS_PUBKEY


def test_signature_digests_cover_exactly_the_handle_net_bytes():
    record = Record(Handle.parse("0.NA/88.101"), (
        HandleValue(1, "HS_SITE", HS_SITE, timestamp=T0),
        HandleValue(300, "HS_PUBKEY", HS_PUBKEY, timestamp=T0),
    ))
    signer = RecordSigner(RSA_PREFIX, lambda handle: ValueRef(300, "0.NA/88.101"), lifetime=86400)
    signature = signer.seal(record, T0).of_type("HS_SIGNATURE")[0]
    jws = Jws.parse(signature.data.decode())
    assert jws.verify(RSA_PREFIX.public_key())
    digests = {d["index"]: d["digest"] for d in jws.claims()["digests"]["digests"]}
    assert digests == {1: digest_by_hand("HS_SITE", HS_SITE), 300: digest_by_hand("HS_PUBKEY", HS_PUBKEY)}
    # the digest of the older layout is another: a Handle.Net verifier needs the int4 0
    assert digest_by_hand("HS_PUBKEY", HS_PUBKEY_WITHOUT_TRAILER) != digests[300]
