"""Issuing HS_SIGNATURE and HS_CERT (registry/signing.py): known answers from Handle.Net 9, interop, sealing, perms.

Sections (a)–(c) check against vectors produced by Handle.Net 9's own signing code (HandleSigner,
HandleValueDigester, JsonWebSignatureImpl, Gson) with the throwaway RSA keys in fixtures/rsa_*.pem at
iat=1700000000, nbf=1699999400, exp=1763072000. RS256 (PKCS#1 v1.5) and Ed25519 are deterministic, so
the compact JWS strings must match byte for byte. Times are always passed in.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import struct
import warnings

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jws as jose_jws
from joserfc.jwk import OKPKey, RSAKey

from registry.encoding import encode_value
from registry.jws import Jws, JwsError, public_jwk, sign_compact, unb64url
from registry.model import Handle, HandleValue, Record, ValueRef
from registry.permissions import AdminGrant, AdminPermission
from registry.signing import (
    DERIVED_PREFIXES,
    EVERYTHING,
    HANDLES_UNDER_THIS_PREFIX,
    SIGNATURE_INDEX,
    THIS_HANDLE,
    Permission,
    RecordSigner,
    certificate_payload,
    certificates,
    covers,
    issue_certificate,
    needs_signature,
    signature_expiry,
    signature_payload,
    value_digest,
)
from registry.values import admin_to_bytes

from tests.registry.fixtures import ED_A, ED_B, RSA_PREFIX, RSA_ROOT, load_key  # noqa: F401

# --- known-answer vectors: outputs of Handle.Net 9's own signing code with the fixture RSA keys -----

IAT, NBF, EXP = 1700000000, 1699999400, 1763072000
HANDLE = "21.T14999/ABC"
ROOT_ID = ValueRef(300, "0.0/0.0")
PREFIX_ID = ValueRef(300, "0.NA/21.T14999")

ADMIN_DATA = struct.pack(">H", 0x0FF3) + struct.pack(">i", 14) + b"0.NA/21.T14999" + struct.pack(">i", 200)
V1 = HandleValue(1, "URL", b"https://example.org/abc", ttl=86400, ttl_type=0, permissions=0x0E, timestamp=1650000000)
V2 = HandleValue(2, "EMAIL", b"ops@example.org", ttl=86400, ttl_type=0, permissions=0x0C, timestamp=0)
V3 = HandleValue(
    3, "DESC", "Ärger 标识".encode(), ttl=1800000000, ttl_type=1, permissions=0x0E, timestamp=1600000000,
    references=(ValueRef(7, "21.T14999/REF"),),
)
V100 = HandleValue(100, "HS_ADMIN", ADMIN_DATA, ttl=86400, ttl_type=0, permissions=0x0E, timestamp=0)
VECTOR_VALUES = (V1, V2, V3, V100)
SIGNED_VALUES = (V1, V3, V100)  # the public ones; EMAIL is admin-only

ENCODED_HEX = {
    1: "000000016259008000000151800e0000000355524c0000001768747470733a2f2f6578616d706c652e6f72672f61626300000000",
    2: "000000020000000000000151800c00000005454d41494c0000000f6f7073406578616d706c652e6f726700000000",
    3: (
        "000000035f5e1000016b49d2000e00000004444553430000000dc3847267657220e6a087e8af86000000010000000d32312e54313439"
        "39392f52454600000007"
    ),
    100: "000000640000000000000151800e0000000848535f41444d494e000000180ff30000000e302e4e412f32312e543134393939000000c800000000",
}
DIGESTS = {
    1: "NtewallOe6qsQVeZt4Rh/qeq6Cow6a3dCiNAAhK8DNc=",
    2: "yR6qnj67J9XyG8TEEwXLpg7MdGPuPOfw07887Zykkqk=",
    3: "GUIR3GbsTev8QdVMRCDmN20LjDUs0TI4qIalESr9bvo=",
    100: "vt/KRkajhCH1FpKhBtJgd5yuoyw3Usm5Y/z9nULCcRI=",
}
ROOT_CERT_PAYLOAD = (
    '{"perms":[{"perm":"everything"}],"publicKey":{"kty":"RSA","n":"utQ5maprNjE5P7rk4bPVUxBEkNbghu1Fyhbkn'
    'TC6BnXPGMVRsIoKhcY_IYvJvtUDzs1KLsmNMxx6smCSubjwshcmIj3ShntgWidZIZ-Zpp-LdgCgQQTY-mQbyvqgYrloMJAx-Z-Ot'
    'mx95oD050njZ-lWDRF0LZo7xBfEfansGuNTbYe_WdmqnUxJaGf1ji5do70uQSWkdpE8908tub2mPSsgvvfIZYZ88DofD5AAabTuJ'
    'qurcvPWve0Z9hcgiyka5-lMpwdWlxH37tcu1JXYW-QToEiQg0xBBLVhubdckmgubedeZcLmcCRAt8iyeekmh5l0PlDvgUHigVz94'
    '44agw","e":"AQAB"},"iss":"300:0.0/0.0","sub":"300:0.0/0.0","exp":1763072000,"nbf":1699999400,"iat":1'
    '700000000}'
)
ROOT_CERT_JWS = (
    'eyJhbGciOiJSUzI1NiJ9.eyJwZXJtcyI6W3sicGVybSI6ImV2ZXJ5dGhpbmcifV0sInB1YmxpY0tleSI6eyJrdHkiOiJSU0EiLCJ'
    'uIjoidXRRNW1hcHJOakU1UDdyazRiUFZVeEJFa05iZ2h1MUZ5aGJrblRDNkJuWFBHTVZSc0lvS2hjWV9JWXZKdnRVRHpzMUtMc21'
    'OTXh4NnNtQ1N1Ymp3c2hjbUlqM1NobnRnV2lkWklaLVpwcC1MZGdDZ1FRVFktbVFieXZxZ1lybG9NSkF4LVotT3RteDk1b0QwNTB'
    'ualotbFdEUkYwTFpvN3hCZkVmYW5zR3VOVGJZZV9XZG1xblV4SmFHZjFqaTVkbzcwdVFTV2tkcEU4OTA4dHViMm1QU3NndnZmSVp'
    'ZWjg4RG9mRDVBQWFiVHVKcXVyY3ZQV3ZlMFo5aGNnaXlrYTUtbE1wd2RXbHhIMzd0Y3UxSlhZVy1RVG9FaVFnMHhCQkxWaHViZGN'
    'rbWd1YmVkZVpjTG1jQ1JBdDhpeWVla21oNWwwUGxEdmdVSGlnVno5NDQ0YWd3IiwiZSI6IkFRQUIifSwiaXNzIjoiMzAwOjAuMC8'
    'wLjAiLCJzdWIiOiIzMDA6MC4wLzAuMCIsImV4cCI6MTc2MzA3MjAwMCwibmJmIjoxNjk5OTk5NDAwLCJpYXQiOjE3MDAwMDAwMDB'
    '9.rIXAtOWSzGO4pa-28GQYazdtB4yDz8DcrPl1YkDNeEaVbSDXLPuCMq0VC_mGkyKODQ69NHE2S6e-30sA_U21cIG1JVMdA7LNuU'
    'wt1p_0lUyjNZfUMfJ1xfTe3rakUk-Cw6v3SRHqufpRPxwbrwXXq4U4F8PwqfrTRGAdogy2-nPaxdb5tQxweMhae22LB8Ya6kvFKI'
    'df21JJSNr1DrrUGQ7YfkriITroTDhkzk6UvPdcmDcgMEchhWk4KR83_KCDoynJJF53W098wN302hIpF5bga7TAqhNnHfUCQaOag_'
    'ucSVX9vlpD-sKRar8O3TWk6CUedZ2Jh_DQTJSlExiZSQ'
)
PREFIX_CERT_PAYLOAD = (
    '{"perms":[{"handle":"0.NA/21.T14999","perm":"handlesUnderThisPrefix"},{"handle":"0.NA/21.T14999","pe'
    'rm":"derivedPrefixes"}],"publicKey":{"kty":"RSA","n":"v74Y5YVkEgnSLuLib2-Oh1u0m9VxQ7yBXT07qeDp1NL0n-'
    'A2CCTB7w-0j7rhi3S8d85cK0vmPKAn4Qj0yqJ34qe0lz3dq7dhstIpieXzF0k3cS1nFxQAO7NVgnAPWx7q6RXpQqG4-FAngr_XOU'
    'jd2wCiDc5Le8rL1J50GTLo5rbnIJOWuWl2kXRfdLhiBe0C286-MHl8mHbU1RLuB8dc3LBMGvp5u830tv81Ojr4hOO5cazKYJwFmr'
    'JoBogtyK4lVhoXRyr237hXOPixoiy04YGzSG2OzfvKtewtQQOsX4WWvGJB6iQ9YWiEY2mnEEMLJx1tGSSwOrlumd56iflWEQ","e'
    '":"AQAB"},"iss":"300:0.0/0.0","sub":"300:0.NA/21.T14999","exp":1763072000,"nbf":1699999400,"iat":170'
    '0000000}'
)
PREFIX_CERT_JWS = (
    'eyJhbGciOiJSUzI1NiJ9.eyJwZXJtcyI6W3siaGFuZGxlIjoiMC5OQS8yMS5UMTQ5OTkiLCJwZXJtIjoiaGFuZGxlc1VuZGVyVGh'
    'pc1ByZWZpeCJ9LHsiaGFuZGxlIjoiMC5OQS8yMS5UMTQ5OTkiLCJwZXJtIjoiZGVyaXZlZFByZWZpeGVzIn1dLCJwdWJsaWNLZXk'
    'iOnsia3R5IjoiUlNBIiwibiI6InY3NFk1WVZrRWduU0x1TGliMi1PaDF1MG05VnhRN3lCWFQwN3FlRHAxTkwwbi1BMkNDVEI3dy0'
    'wajdyaGkzUzhkODVjSzB2bVBLQW40UWoweXFKMzRxZTBsejNkcTdkaHN0SXBpZVh6RjBrM2NTMW5GeFFBTzdOVmduQVBXeDdxNlJ'
    'YcFFxRzQtRkFuZ3JfWE9VamQyd0NpRGM1TGU4ckwxSjUwR1RMbzVyYm5JSk9XdVdsMmtYUmZkTGhpQmUwQzI4Ni1NSGw4bUhiVTF'
    'STHVCOGRjM0xCTUd2cDV1ODMwdHY4MU9qcjRoT081Y2F6S1lKd0ZtckpvQm9ndHlLNGxWaG9YUnlyMjM3aFhPUGl4b2l5MDRZR3p'
    'TRzJPemZ2S3Rld3RRUU9zWDRXV3ZHSkI2aVE5WVdpRVkybW5FRU1MSngxdEdTU3dPcmx1bWQ1NmlmbFdFUSIsImUiOiJBUUFCIn0'
    'sImlzcyI6IjMwMDowLjAvMC4wIiwic3ViIjoiMzAwOjAuTkEvMjEuVDE0OTk5IiwiZXhwIjoxNzYzMDcyMDAwLCJuYmYiOjE2OTk'
    '5OTk0MDAsImlhdCI6MTcwMDAwMDAwMH0.R-IBVg7MCPZeuDz32xe00mny010TJQrJa6dynfyfMbp_8McbrYvdfl-3hwxaeW3Q3Sh'
    'p2gdXx-VC30oK9JBAbc0ipocqF-vU64-e3BJ-Hccgal6zUJjCieweyYbc2JqDZUs5FB42S6T8OHz6U33fGsYWZrhFon3pTjrujL_'
    'cBN8UCN_6LsZrPjNw9WxHpAiqLsu-qguDdht7hAJdbgycQllxLZKbMxivV72El9jw9Hr8FG2p-VA0TuO89kbXJwVvhfkLwIYYvxl'
    'oS54P97ht3KOWiXsCNGBX4e9yooUr95XEyn_6qIqIsty9k6rv1GkN_msVDIOPLTRP0qQTCdLXCQ'
)
SIGNATURE_PAYLOAD = (
    '{"digests":{"alg":"SHA-256","digests":[{"index":1,"digest":"NtewallOe6qsQVeZt4Rh/qeq6Cow6a3dCiNAAhK8'
    'DNc="},{"index":3,"digest":"GUIR3GbsTev8QdVMRCDmN20LjDUs0TI4qIalESr9bvo="},{"index":100,"digest":"vt'
    '/KRkajhCH1FpKhBtJgd5yuoyw3Usm5Y/z9nULCcRI="}]},"iss":"300:0.NA/21.T14999","sub":"21.T14999/ABC","exp'
    '":1763072000,"nbf":1699999400,"iat":1700000000}'
)
SIGNATURE_JWS = (
    'eyJhbGciOiJSUzI1NiJ9.eyJkaWdlc3RzIjp7ImFsZyI6IlNIQS0yNTYiLCJkaWdlc3RzIjpbeyJpbmRleCI6MSwiZGlnZXN0Ijo'
    'iTnRld2FsbE9lNnFzUVZlWnQ0UmgvcWVxNkNvdzZhM2RDaU5BQWhLOEROYz0ifSx7ImluZGV4IjozLCJkaWdlc3QiOiJHVUlSM0d'
    'ic1RldjhRZFZNUkNEbU4yMExqRFVzMFRJNHFJYWxFU3I5YnZvPSJ9LHsiaW5kZXgiOjEwMCwiZGlnZXN0IjoidnQvS1JrYWpoQ0g'
    'xRnBLaEJ0SmdkNXl1b3l3M1VzbTVZL3o5blVMQ2NSST0ifV19LCJpc3MiOiIzMDA6MC5OQS8yMS5UMTQ5OTkiLCJzdWIiOiIyMS5'
    'UMTQ5OTkvQUJDIiwiZXhwIjoxNzYzMDcyMDAwLCJuYmYiOjE2OTk5OTk0MDAsImlhdCI6MTcwMDAwMDAwMH0.ikgfV5L5ODJWBXf'
    'Q3fJDgqisfipOfL10_8Ulo4aEnPPBA307Qkft-U3pJvso9tOA1jBJrPXUgVN5ISxwNkApE_pwbZr8NjGPzK3xwGIOLD-sjnLbvjW'
    '8zN-7fY7a6GeWMQp5IRVi_jTvc-8YhvNG5PUo-bWANOzrZxJ7j7gLMFAB1KmlC0Rs85UsYFX3-1XQZbdeTN3wdo4Rf9sPJUe3ouA'
    'vI4EOs5TlwHmyrfVf6TxX8vBrUGyDB3VMJjV-r1bk8l8NLkkkQssXD8ePa9iVz8Fr4mh8uY1XCiMhoFXYOKR5yD46CO-6m4zK7uh'
    '7qUhp-l_wTQCS-jqQEpqJBD-XKg'
)
SIGNATURE_CHAIN_PAYLOAD = (
    '{"digests":{"alg":"SHA-256","digests":[{"index":1,"digest":"NtewallOe6qsQVeZt4Rh/qeq6Cow6a3dCiNAAhK8'
    'DNc="},{"index":3,"digest":"GUIR3GbsTev8QdVMRCDmN20LjDUs0TI4qIalESr9bvo="},{"index":100,"digest":"vt'
    '/KRkajhCH1FpKhBtJgd5yuoyw3Usm5Y/z9nULCcRI="}]},"chain":["400:0.NA/21.T14999"],"iss":"300:0.NA/21.T14'
    '999","sub":"21.T14999/ABC","exp":1763072000,"nbf":1699999400,"iat":1700000000}'
)
SIGNATURE_CHAIN_JWS = (
    'eyJhbGciOiJSUzI1NiJ9.eyJkaWdlc3RzIjp7ImFsZyI6IlNIQS0yNTYiLCJkaWdlc3RzIjpbeyJpbmRleCI6MSwiZGlnZXN0Ijo'
    'iTnRld2FsbE9lNnFzUVZlWnQ0UmgvcWVxNkNvdzZhM2RDaU5BQWhLOEROYz0ifSx7ImluZGV4IjozLCJkaWdlc3QiOiJHVUlSM0d'
    'ic1RldjhRZFZNUkNEbU4yMExqRFVzMFRJNHFJYWxFU3I5YnZvPSJ9LHsiaW5kZXgiOjEwMCwiZGlnZXN0IjoidnQvS1JrYWpoQ0g'
    'xRnBLaEJ0SmdkNXl1b3l3M1VzbTVZL3o5blVMQ2NSST0ifV19LCJjaGFpbiI6WyI0MDA6MC5OQS8yMS5UMTQ5OTkiXSwiaXNzIjo'
    'iMzAwOjAuTkEvMjEuVDE0OTk5Iiwic3ViIjoiMjEuVDE0OTk5L0FCQyIsImV4cCI6MTc2MzA3MjAwMCwibmJmIjoxNjk5OTk5NDA'
    'wLCJpYXQiOjE3MDAwMDAwMDB9.pKofyQ4arWCJFyQHrr40HL5iJBZzTszUd1Ikt-ceYixNRthjj2VSy7evNLdkFw3d2iAitHgW2X'
    'FPja3XxReuVcnWxVecoa1v-xIP6QcstRrhFknNDgZIYFigz4ftVryKV4meoSeZc1MIA8aieh7oxXk7O9BmEsvIztXRFx4xuECvBd'
    'WeM9e_Ah9fYL-x1ZL6iEKXAEEqLQ6oYiwLT9E8y8hEffDowpYMucvJYJwX3OVs97muV6nEAaHtz7oz2gLcth8teJ78g8c6vkOTvk'
    'iSOfV3KzD19CnxcnG1tMmYnFuSppQVOmm_mCD_zGtqJSboNoUjYhLRPfLmde5JmhevDQ'
)
SIGNATURE_JSON_SERIALIZATION = (
    '{"payload":"eyJkaWdlc3RzIjp7ImFsZyI6IlNIQS0yNTYiLCJkaWdlc3RzIjpbeyJpbmRleCI6MSwiZGlnZXN0IjoiTnRld2Fs'
    'bE9lNnFzUVZlWnQ0UmgvcWVxNkNvdzZhM2RDaU5BQWhLOEROYz0ifSx7ImluZGV4IjozLCJkaWdlc3QiOiJHVUlSM0dic1RldjhR'
    'ZFZNUkNEbU4yMExqRFVzMFRJNHFJYWxFU3I5YnZvPSJ9LHsiaW5kZXgiOjEwMCwiZGlnZXN0IjoidnQvS1JrYWpoQ0gxRnBLaEJ0'
    'SmdkNXl1b3l3M1VzbTVZL3o5blVMQ2NSST0ifV19LCJpc3MiOiIzMDA6MC5OQS8yMS5UMTQ5OTkiLCJzdWIiOiIyMS5UMTQ5OTkv'
    'QUJDIiwiZXhwIjoxNzYzMDcyMDAwLCJuYmYiOjE2OTk5OTk0MDAsImlhdCI6MTcwMDAwMDAwMH0","signatures":[{"protect'
    'ed":"eyJhbGciOiJSUzI1NiJ9","signature":"ikgfV5L5ODJWBXfQ3fJDgqisfipOfL10_8Ulo4aEnPPBA307Qkft-U3pJvso'
    '9tOA1jBJrPXUgVN5ISxwNkApE_pwbZr8NjGPzK3xwGIOLD-sjnLbvjW8zN-7fY7a6GeWMQp5IRVi_jTvc-8YhvNG5PUo-bWANOzr'
    'ZxJ7j7gLMFAB1KmlC0Rs85UsYFX3-1XQZbdeTN3wdo4Rf9sPJUe3ouAvI4EOs5TlwHmyrfVf6TxX8vBrUGyDB3VMJjV-r1bk8l8N'
    'LkkkQssXD8ePa9iVz8Fr4mh8uY1XCiMhoFXYOKR5yD46CO-6m4zK7uh7qUhp-l_wTQCS-jqQEpqJBD-XKg"}]}'
)

PREFIX_PERMS = (
    Permission(HANDLES_UNDER_THIS_PREFIX, "0.NA/21.T14999"),
    Permission(DERIVED_PREFIXES, "0.NA/21.T14999"),
)

# (d) pinned EdDSA outputs, computed once by this code with fixtures/ed25519_a.pem and checked below
# against the key with `cryptography` directly.
EDDSA_SIGNATURE_JWS = (
    'eyJhbGciOiJFZERTQSJ9.eyJkaWdlc3RzIjp7ImFsZyI6IlNIQS0yNTYiLCJkaWdlc3RzIjpbeyJpbmRleCI6MSwiZGlnZXN0Ijo'
    'iTnRld2FsbE9lNnFzUVZlWnQ0UmgvcWVxNkNvdzZhM2RDaU5BQWhLOEROYz0ifSx7ImluZGV4IjozLCJkaWdlc3QiOiJHVUlSM0d'
    'ic1RldjhRZFZNUkNEbU4yMExqRFVzMFRJNHFJYWxFU3I5YnZvPSJ9LHsiaW5kZXgiOjEwMCwiZGlnZXN0IjoidnQvS1JrYWpoQ0g'
    'xRnBLaEJ0SmdkNXl1b3l3M1VzbTVZL3o5blVMQ2NSST0ifV19LCJpc3MiOiIzMDA6MC5OQS8yMS5UMTQ5OTkiLCJzdWIiOiIyMS5'
    'UMTQ5OTkvQUJDIiwiZXhwIjoxNzYzMDcyMDAwLCJuYmYiOjE2OTk5OTk0MDAsImlhdCI6MTcwMDAwMDAwMH0.jgMBoe5XjjcS2Ja'
    'WwyHcFfXdYlapjZWDyY3SEtxcmVZGRDpw34m1llVlGrkcHVa09IdLD2eR6rX_ZYf7z0-6Ag'
)
EDDSA_CERT_JWS = (
    'eyJhbGciOiJFZERTQSJ9.eyJwZXJtcyI6W3siaGFuZGxlIjoiMC5OQS84OC4xMDEuNSIsInBlcm0iOiJoYW5kbGVzVW5kZXJUaGl'
    'zUHJlZml4In1dLCJwdWJsaWNLZXkiOnsia3R5IjoiT0tQIiwiY3J2IjoiRWQyNTUxOSIsIngiOiI4NE9hOHo0Wl9GMkt6ZFU4ZHd'
    '3WE1rMC03TXRXdWZrT2RvMkJUVTY1WFdnIn0sImlzcyI6IjMwMDowLk5BLzg4LjEwMSIsInN1YiI6IjMwMDowLk5BLzg4LjEwMS4'
    '1IiwiZXhwIjoxNzYzMDcyMDAwLCJuYmYiOjE2OTk5OTk0MDAsImlhdCI6MTcwMDAwMDAwMH0.MRPhv0kyYcHq-icPPT7g6bqOiLm'
    'LVH0J4iT0V84tMGstB3Z1Fyta8CeTHp0sVzT5Yl7O3y0hH7sXJMOaPSYfCQ'
)


def b64_std(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decoded_payload(token: str) -> bytes:
    return unb64url(token.split(".")[1])


# --- (a) value encodings and digests ----------------------------------------------------------------


@pytest.mark.parametrize("value", VECTOR_VALUES, ids=lambda v: f"{v.index}-{v.type}")
def test_value_encoding_matches_handle_net(value):
    assert encode_value(value).hex() == ENCODED_HEX[value.index]


@pytest.mark.parametrize("value", VECTOR_VALUES, ids=lambda v: f"{v.index}-{v.type}")
def test_value_digest_matches_handle_net(value):
    assert value_digest(value) == DIGESTS[value.index]
    # the vector itself: SHA-256 of the encoding without index and timestamp, standard padded base64
    assert b64_std(hashlib.sha256(bytes.fromhex(ENCODED_HEX[value.index])[8:]).digest()) == DIGESTS[value.index]


def test_hs_admin_vector_data_is_our_admin_encoding():
    grant = AdminGrant(ValueRef(200, "0.NA/21.T14999"), AdminPermission(0x0FF3))
    assert admin_to_bytes(grant) == ADMIN_DATA


def test_value_digest_ignores_index_and_timestamp_only():
    moved = dataclasses.replace(V3, index=77, timestamp=1234)
    assert value_digest(moved) == DIGESTS[3]
    assert value_digest(dataclasses.replace(V3, ttl=V3.ttl + 1)) != DIGESTS[3]
    assert value_digest(dataclasses.replace(V3, references=())) != DIGESTS[3]


def test_value_digest_algorithms():
    tail = bytes.fromhex(ENCODED_HEX[1])[8:]
    assert value_digest(V1, "SHA256") == value_digest(V1, "sha-256") == DIGESTS[1]
    assert value_digest(V1, "SHA-1") == value_digest(V1, "SHA1") == b64_std(hashlib.sha1(tail).digest())
    for unsupported in ("MD5", "", "SHA-3"):
        with pytest.raises(JwsError):
            value_digest(V1, unsupported)


# --- (b) payload bytes ----------------------------------------------------------------------------------


def test_signature_payload_bytes():
    payload = signature_payload(HANDLE, SIGNED_VALUES, PREFIX_ID, iat=IAT, nbf=NBF, exp=EXP)
    assert payload == SIGNATURE_PAYLOAD.encode("utf-8")


def test_signature_payload_bytes_with_chain():
    payload = signature_payload(HANDLE, SIGNED_VALUES, PREFIX_ID, iat=IAT, nbf=NBF, exp=EXP, chain=["400:0.NA/21.T14999"])
    assert payload == SIGNATURE_CHAIN_PAYLOAD.encode("utf-8")


def test_root_certificate_payload_bytes():
    payload = certificate_payload(
        ROOT_ID, ROOT_ID, RSA_ROOT.public_key(), [Permission(EVERYTHING)], iat=IAT, nbf=NBF, exp=EXP
    )
    assert payload == ROOT_CERT_PAYLOAD.encode("utf-8")


def test_prefix_certificate_payload_bytes():
    payload = certificate_payload(ROOT_ID, PREFIX_ID, RSA_PREFIX.public_key(), PREFIX_PERMS, iat=IAT, nbf=NBF, exp=EXP)
    assert payload == PREFIX_CERT_PAYLOAD.encode("utf-8")


def test_payloads_omit_absent_members():
    payload = orjson.loads(signature_payload(HANDLE, SIGNED_VALUES, PREFIX_ID, iat=IAT, nbf=None, exp=None, chain=[]))
    assert list(payload) == ["digests", "iss", "sub", "iat"]
    cert = orjson.loads(certificate_payload(ROOT_ID, PREFIX_ID, ED_B.public_key(), [], iat=IAT, nbf=None, exp=None))
    assert list(cert) == ["perms", "publicKey", "iss", "sub", "iat"]
    assert cert["perms"] == []
    assert cert["publicKey"] == public_jwk(ED_B)


def test_vector_payloads_are_the_decoded_jws_payloads():
    # guards the transcription of the vectors
    for payload, token in [
        (ROOT_CERT_PAYLOAD, ROOT_CERT_JWS), (PREFIX_CERT_PAYLOAD, PREFIX_CERT_JWS),
        (SIGNATURE_PAYLOAD, SIGNATURE_JWS), (SIGNATURE_CHAIN_PAYLOAD, SIGNATURE_CHAIN_JWS),
    ]:
        assert decoded_payload(token) == payload.encode("utf-8")


# --- (c) RS256 JWS equal to Handle.Net's, byte for byte ----------------------------------------------


def test_rs256_signature_jws_equals_handle_net():
    payload = signature_payload(HANDLE, SIGNED_VALUES, PREFIX_ID, iat=IAT, nbf=NBF, exp=EXP)
    assert sign_compact(RSA_PREFIX, payload) == SIGNATURE_JWS


def test_rs256_signature_with_chain_jws_equals_handle_net():
    payload = signature_payload(HANDLE, SIGNED_VALUES, PREFIX_ID, iat=IAT, nbf=NBF, exp=EXP, chain=["400:0.NA/21.T14999"])
    assert sign_compact(RSA_PREFIX, payload) == SIGNATURE_CHAIN_JWS


def test_rs256_root_certificate_equals_handle_net():
    token = issue_certificate(RSA_ROOT, ROOT_ID, ROOT_ID, RSA_ROOT.public_key(), [Permission(EVERYTHING)], iat=IAT, nbf=NBF, exp=EXP)
    assert token == ROOT_CERT_JWS


def test_rs256_prefix_certificate_equals_handle_net():
    token = issue_certificate(RSA_ROOT, ROOT_ID, PREFIX_ID, RSA_PREFIX.public_key(), PREFIX_PERMS, iat=IAT, nbf=NBF, exp=EXP)
    assert token == PREFIX_CERT_JWS


def test_record_signer_reproduces_handle_nets_signature():
    # Handle.Net's batch signer: nbf = now - 600; the vectors use exp = iat + 2*365 days.
    record = Record(Handle.parse(HANDLE), VECTOR_VALUES)
    signer = RecordSigner(RSA_PREFIX, lambda handle: PREFIX_ID, lifetime=EXP - IAT, skew=IAT - NBF)
    sealed = signer.seal(record, IAT)
    signature = sealed.of_type("HS_SIGNATURE")
    assert len(signature) == 1
    assert signature[0].data.decode("ascii") == SIGNATURE_JWS


def test_handle_net_json_serialization_parses_like_the_compact_form():
    parsed = Jws.parse(SIGNATURE_JSON_SERIALIZATION)
    assert parsed == Jws.parse(SIGNATURE_JWS)
    assert parsed.verify(RSA_PREFIX.public_key())


@pytest.mark.parametrize(
    ("token", "key"),
    [(ROOT_CERT_JWS, RSA_ROOT), (PREFIX_CERT_JWS, RSA_ROOT), (SIGNATURE_JWS, RSA_PREFIX), (SIGNATURE_CHAIN_JWS, RSA_PREFIX)],
    ids=["root", "prefix", "signature", "signature-chain"],
)
def test_handle_net_jws_verify(token, key):
    parsed = Jws.parse(token)
    assert parsed.alg == "RS256"
    assert parsed.verify(key.public_key())
    assert not parsed.verify((RSA_PREFIX if key is RSA_ROOT else RSA_ROOT).public_key())


# --- (d) EdDSA, pinned ---------------------------------------------------------------------------------


def test_eddsa_signature_is_pinned():
    payload = signature_payload(HANDLE, SIGNED_VALUES, ValueRef(300, "0.NA/21.T14999"), iat=IAT, nbf=NBF, exp=EXP)
    token = sign_compact(ED_A, payload)
    assert token == EDDSA_SIGNATURE_JWS
    head, body, sig = token.split(".")
    assert unb64url(head) == b'{"alg":"EdDSA"}'
    assert unb64url(body) == SIGNATURE_PAYLOAD.encode("utf-8")  # same claims as Handle.Net's RS256 vector
    ED_A.public_key().verify(unb64url(sig), f"{head}.{body}".encode("ascii"))  # raises if it does not verify


def test_eddsa_certificate_is_pinned():
    perms = [Permission(HANDLES_UNDER_THIS_PREFIX, "0.NA/88.101.5")]
    token = issue_certificate(
        ED_A, ValueRef(300, "0.NA/88.101"), ValueRef(300, "0.NA/88.101.5"), ED_B.public_key(), perms, iat=IAT, nbf=NBF, exp=EXP
    )
    assert token == EDDSA_CERT_JWS
    claims = Jws.parse(token).claims()
    assert claims["publicKey"] == public_jwk(ED_B)
    assert claims["perms"] == [{"handle": "0.NA/88.101.5", "perm": "handlesUnderThisPrefix"}]
    head, body, sig = token.split(".")
    ED_A.public_key().verify(unb64url(sig), f"{head}.{body}".encode("ascii"))


def test_issue_certificate_rejects_unknown_perms():
    with pytest.raises(JwsError):
        issue_certificate(ED_A, ROOT_ID, PREFIX_ID, ED_B.public_key(), [Permission("listHandles", "0.NA/21.T14999")], iat=IAT, nbf=NBF, exp=EXP)


def test_self_issued_certificate_has_equal_iss_and_sub():
    claims = Jws.parse(
        issue_certificate(ED_A, ROOT_ID, ROOT_ID, ED_A.public_key(), [Permission(EVERYTHING)], iat=IAT, nbf=None, exp=None)
    ).claims()
    assert claims["iss"] == claims["sub"] == "300:0.0/0.0"
    assert claims["perms"] == [{"perm": "everything"}]


# --- (e) interop with an independent JWS implementation (joserfc) ---------------------------------------

NOW = 1710000000
LIFETIME = 3600 * 24 * 30
SKEW = 120


def _sealed_vector_record(key) -> HandleValue:
    record = Record(Handle.parse(HANDLE), VECTOR_VALUES)
    sealed = RecordSigner(key, lambda handle: PREFIX_ID, lifetime=LIFETIME, skew=SKEW).seal(record, NOW)
    (signature,) = sealed.of_type("HS_SIGNATURE")
    return signature


def _expected_claims() -> dict:
    return {
        "digests": {"alg": "SHA-256", "digests": [{"index": i, "digest": DIGESTS[i]} for i in (1, 3, 100)]},
        "iss": "300:0.NA/21.T14999",
        "sub": HANDLE,
        "iat": NOW,
        "nbf": NOW - SKEW,
        "exp": NOW + LIFETIME,
    }


def test_rs256_record_signature_verifies_with_joserfc():
    signature = _sealed_vector_record(RSA_PREFIX)
    key = RSAKey.import_key(RSA_PREFIX.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ))
    result = jose_jws.deserialize_compact(signature.data.decode("ascii"), key, algorithms=["RS256"])
    assert result.headers() == {"alg": "RS256"}
    assert orjson.loads(result.payload) == _expected_claims()
    with pytest.raises(jose_jws.BadSignatureError):
        other = RSAKey.import_key(public_jwk(RSA_ROOT))
        jose_jws.deserialize_compact(signature.data.decode("ascii"), other, algorithms=["RS256"])


def test_eddsa_record_signature_verifies_with_joserfc():
    signature = _sealed_vector_record(ED_A)
    key = OKPKey.import_key(public_jwk(ED_A))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags "EdDSA" as deprecated by RFC 9864
        result = jose_jws.deserialize_compact(signature.data.decode("ascii"), key, algorithms=["EdDSA"])
        assert result.headers() == {"alg": "EdDSA"}
        assert orjson.loads(result.payload) == _expected_claims()
        with pytest.raises(jose_jws.BadSignatureError):
            jose_jws.deserialize_compact(signature.data.decode("ascii"), OKPKey.import_key(public_jwk(ED_B)), algorithms=["EdDSA"])


# --- (f) RecordSigner.seal --------------------------------------------------------------------------------

SN = Handle.parse("88.101/SN-1")
SIGNER_ID = ValueRef(300, "0.NA/88.101")


def _signer(**kw) -> RecordSigner:
    return RecordSigner(ED_A, lambda handle: SIGNER_ID, lifetime=kw.pop("lifetime", 86400), **kw)


def _claims(value: HandleValue) -> dict:
    return Jws.parse(value.data.decode("ascii")).claims()


def _digested(value: HandleValue) -> list[int]:
    return [d["index"] for d in _claims(value)["digests"]["digests"]]


BASE_VALUES = (
    HandleValue(1, "URL", b"https://example.org/sn-1"),
    HandleValue(2, "EMAIL", b"private@example.org", permissions=0x0C),
    HandleValue(3, "DESC", b"both public bits", permissions=0x0F),
    HandleValue(100, "HS_ADMIN", ADMIN_DATA),
    HandleValue(300, "HS_PUBKEY", b"public key bytes"),
    HandleValue(1100, "HS_SECKEY", b"secret", permissions=0x0C),
)


def test_seal_signs_exactly_the_public_values_other_than_signatures():
    old = (HandleValue(400, "HS_SIGNATURE", b"old.signature.value"),)
    sealed = _signer().seal(Record(SN, BASE_VALUES + old), NOW)
    (signature,) = sealed.of_type("HS_SIGNATURE")
    assert _digested(signature) == [1, 3, 100, 300]  # not 2 (EMAIL), not 1100 (HS_SECKEY), not the signature
    by_index = {v.index: v for v in sealed.values}
    for entry in _claims(signature)["digests"]["digests"]:
        assert entry["digest"] == value_digest(by_index[entry["index"]])
    assert _claims(signature)["digests"]["alg"] == "SHA-256"


def test_seal_replaces_every_earlier_signature_with_one():
    old = (
        HandleValue(400, "HS_SIGNATURE", b"first.old.sig"),
        HandleValue(402, "HS_SIGNATURE", b"second.old.sig"),
        HandleValue(405, "hs_signature", b"lower.case.type"),
    )
    sealed = _signer().seal(Record(SN, BASE_VALUES + old), NOW)
    signatures = [v for v in sealed.values if v.type_key == "HS_SIGNATURE"]
    assert [v.index for v in signatures] == [400]
    assert Jws.parse(signatures[0].data.decode("ascii")).verify(ED_A.public_key())
    assert [v for v in sealed.values if v.type_key != "HS_SIGNATURE"] == list(BASE_VALUES)


def test_seal_twice_keeps_one_signature_at_the_same_index():
    signer = _signer()
    once = signer.seal(Record(SN, BASE_VALUES), NOW)
    twice = signer.seal(once, NOW + 10)
    assert [v.index for v in twice.of_type("HS_SIGNATURE")] == [SIGNATURE_INDEX]
    assert _claims(twice.value_at(SIGNATURE_INDEX))["iat"] == NOW + 10
    assert signer.seal(once, NOW) == once  # deterministic


def test_seal_puts_the_signature_at_400_when_free():
    sealed = _signer().seal(Record(SN, BASE_VALUES), NOW)
    assert [v.index for v in sealed.of_type("HS_SIGNATURE")] == [400]


def test_seal_takes_the_first_free_index_from_400():
    taken = (
        HandleValue(399, "URL", b"x"), HandleValue(400, "URL", b"y"), HandleValue(401, "HS_CERT", b"c"), HandleValue(403, "URL", b"z"),
    )
    sealed = _signer().seal(Record(SN, BASE_VALUES + taken), NOW)
    assert [v.index for v in sealed.of_type("HS_SIGNATURE")] == [402]
    assert 401 in _digested(sealed.value_at(402))  # an HS_CERT is an ordinary public value and is covered


def test_seal_keeps_the_old_signature_index():
    values = BASE_VALUES + (HandleValue(400, "URL", b"y"), HandleValue(405, "HS_SIGNATURE", b"old"))
    sealed = _signer().seal(Record(SN, values), NOW)
    assert [v.index for v in sealed.of_type("HS_SIGNATURE")] == [405]
    assert sealed.value_at(400).type == "URL"


@pytest.mark.parametrize(("lifetime", "skew"), [(86400, 600), (3600, 0), (2 * 366 * 86400, 30)])
def test_seal_times_come_from_now_lifetime_and_skew(lifetime, skew):
    sealed = RecordSigner(ED_A, lambda handle: SIGNER_ID, lifetime=lifetime, skew=skew).seal(Record(SN, BASE_VALUES), NOW)
    claims = _claims(sealed.value_at(400))
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (NOW, NOW - skew, NOW + lifetime)
    assert claims["iss"] == "300:0.NA/88.101"
    assert claims["sub"] == "88.101/SN-1"
    assert "chain" not in claims


def test_seal_default_skew_is_600():
    claims = _claims(_signer().seal(Record(SN, BASE_VALUES), NOW).value_at(400))
    assert claims["nbf"] == NOW - 600


def test_seal_signature_value_is_public_readable():
    signature = _signer().seal(Record(SN, BASE_VALUES), NOW).value_at(400)
    assert signature.type == "HS_SIGNATURE"
    assert signature.public_read
    assert not signature.permissions & 0x01  # not publicly writable


def test_seal_asks_identity_for_with_the_records_handle():
    seen = []

    def identity_for(handle):
        seen.append(handle)
        return SIGNER_ID

    RecordSigner(ED_A, identity_for, lifetime=60).seal(Record(SN, BASE_VALUES), NOW)
    assert seen == [SN]


def test_seal_leaves_the_record_alone_without_an_identity():
    old = (HandleValue(400, "HS_SIGNATURE", b"kept as it is"),)
    record = Record(SN, BASE_VALUES + old)
    sealed = RecordSigner(ED_A, lambda handle: None, lifetime=60).seal(record, NOW)
    assert sealed == record
    assert sealed.value_at(400).data == b"kept as it is"


def test_seal_on_the_ghr_record_leaves_legacy_signature_values_unsigned():
    values = (
        HandleValue(1, "HS_SITE", b"site"),
        HandleValue(2, "10320/sig.sig", b"legacy"),
        HandleValue(3, "10320/SIG.DIGEST", b"legacy"),
    )
    sealed = _signer().seal(Record(Handle.parse("0.NA/0.NA"), values), NOW)
    assert _digested(sealed.value_at(400)) == [1]
    other = _signer().seal(Record(SN, values), NOW)
    assert _digested(other.value_at(400)) == [1, 2, 3]


def test_needs_signature():
    handle = Handle.parse("88.101/x")
    ghr = Handle.parse("0.na/0.na")
    assert needs_signature(HandleValue(1, "URL", b"x"), handle)
    assert needs_signature(HandleValue(1, "HS_CERT", b"x"), handle)
    assert not needs_signature(HandleValue(1, "URL", b"x", permissions=0x0C), handle)
    assert not needs_signature(HandleValue(1, "HS_SIGNATURE", b"x"), handle)
    assert not needs_signature(HandleValue(1, "Hs_Signature", b"x"), handle)
    assert not needs_signature(HandleValue(1, "10320/sig.sig", b"x"), ghr)
    assert needs_signature(HandleValue(1, "10320/sig.sig", b"x"), handle)


# --- (g) signature_expiry ------------------------------------------------------------------------------


def _signature_value(index: int, exp: int | None, type_: str = "HS_SIGNATURE") -> HandleValue:
    payload = signature_payload("88.101/SN-1", [], SIGNER_ID, iat=NOW, nbf=None, exp=exp)
    return HandleValue(index, type_, sign_compact(ED_A, payload).encode("ascii"))


def test_signature_expiry_is_the_earliest_exp():
    values = [BASE_VALUES[0], _signature_value(400, NOW + 500), _signature_value(401, NOW + 100), _signature_value(402, NOW + 900)]
    assert signature_expiry(values) == NOW + 100


def test_signature_expiry_ignores_certificates_garbage_and_missing_exp():
    values = [
        _signature_value(400, NOW + 500),
        _signature_value(401, NOW + 1, type_="HS_CERT"),
        HandleValue(402, "HS_SIGNATURE", b"not a jws"),
        HandleValue(403, "HS_SIGNATURE", "ünïcode".encode()),
        _signature_value(404, None),
    ]
    assert signature_expiry(values) == NOW + 500


def test_signature_expiry_none_without_signatures():
    assert signature_expiry(BASE_VALUES) is None
    assert signature_expiry([]) is None
    assert signature_expiry([_signature_value(400, None)]) is None


def test_signature_expiry_of_a_sealed_record():
    sealed = _signer(lifetime=777).seal(Record(SN, BASE_VALUES), NOW)
    assert signature_expiry(sealed.values) == NOW + 777


def test_certificates_returns_the_readable_hs_certs():
    cert = issue_certificate(ED_A, ROOT_ID, PREFIX_ID, ED_B.public_key(), [Permission(EVERYTHING)], iat=NOW, nbf=None, exp=None)
    values = [
        HandleValue(1, "URL", cert.encode()),
        HandleValue(400, "HS_CERT", cert.encode()),
        HandleValue(401, "HS_CERT", b"garbage"),
    ]
    found = certificates(values)
    assert [(v.index, claims["sub"]) for v, _jws, claims in found] == [(400, "300:0.NA/21.T14999")]


# --- (h) what each perm covers (Handle.Net's HandleVerifier; docs/signing.md) ---------------------------


def test_permission_json():
    assert Permission(EVERYTHING).to_json() == {"perm": "everything"}
    assert Permission(THIS_HANDLE, "0.NA/88.101").to_json() == {"handle": "0.NA/88.101", "perm": "thisHandle"}
    assert Permission.from_json({"handle": "0.NA/88.101", "perm": "derivedPrefixes"}) == Permission(DERIVED_PREFIXES, "0.NA/88.101")
    assert Permission.from_json({"perm": "everything", "handle": 5}) == Permission(EVERYTHING)
    for bad in (None, [], "everything", {"handle": "0.NA/88.101"}, {"perm": 1}):
        with pytest.raises(JwsError):
            Permission.from_json(bad)


COVERS = [
    # everything: any handle, with or without a handle member
    (EVERYTHING, None, "88.101/x", True),
    (EVERYTHING, None, "0.NA/88.101", True),
    (EVERYTHING, None, "0.0/0.0", True),
    (EVERYTHING, "0.NA/88.101", "99.1/other", True),
    # thisHandle on a prefix record: the record itself and, surprisingly, every P/x
    (THIS_HANDLE, "0.NA/88.101", "0.NA/88.101", True),
    (THIS_HANDLE, "0.NA/88.101", "0.na/88.101", True),
    (THIS_HANDLE, "0.NA/88.101", "88.101/x", True),
    (THIS_HANDLE, "0.NA/88.101", "88.101/a/b", True),
    (THIS_HANDLE, "0.na/88.101", "88.101/x", True),
    (THIS_HANDLE, "0.NA/88.101", "0.NA/88.101.5", False),
    (THIS_HANDLE, "0.NA/88.101", "88.101.5/x", False),
    (THIS_HANDLE, "0.NA/88.101", "88.1010/x", False),
    (THIS_HANDLE, "0.NA/88.101", "88.10/x", False),
    (THIS_HANDLE, "0.NA/88.101", "0.NA/88.10", False),
    (THIS_HANDLE, "0.NA/88.101", "0.NA/88", False),
    # thisHandle on an ordinary handle: only that handle
    (THIS_HANDLE, "88.101/x", "88.101/x", True),
    (THIS_HANDLE, "88.101/x", "88.101/y", False),
    (THIS_HANDLE, "88.101/x", "88.101/x/y", False),
    (THIS_HANDLE, "88.101/x", "0.NA/88.101", False),
    (THIS_HANDLE, None, "88.101/x", False),
    # derivedPrefixes: 0.NA/P.x and P.x/y, not 0.NA/P or P/y
    (DERIVED_PREFIXES, "0.NA/88.101", "0.NA/88.101.5", True),
    (DERIVED_PREFIXES, "0.NA/88.101", "0.NA/88.101.5.7", True),
    (DERIVED_PREFIXES, "0.NA/88.101", "88.101.5/x", True),
    (DERIVED_PREFIXES, "0.NA/88.101", "88.101.5.7/x", True),
    (DERIVED_PREFIXES, "0.NA/88.101", "0.na/88.101.5", True),
    (DERIVED_PREFIXES, "0.na/21.t14999", "21.T14999.1/ABC", True),
    (DERIVED_PREFIXES, "0.NA/88.101", "0.NA/88.101", False),
    (DERIVED_PREFIXES, "0.NA/88.101", "88.101/y", False),
    (DERIVED_PREFIXES, "0.NA/88.101", "0.NA/88.1010", False),
    (DERIVED_PREFIXES, "0.NA/88.101", "88.1010/x", False),
    (DERIVED_PREFIXES, "0.NA/88.101", "0.NA/88.100.5", False),
    (DERIVED_PREFIXES, "0.NA/88.101", "0.NA/88", False),
    (DERIVED_PREFIXES, None, "0.NA/88.101.5", False),
    # handlesUnderThisPrefix: P/x only
    (HANDLES_UNDER_THIS_PREFIX, "0.NA/88.101", "88.101/x", True),
    (HANDLES_UNDER_THIS_PREFIX, "0.NA/88.101", "88.101/a/b", True),
    (HANDLES_UNDER_THIS_PREFIX, "0.na/21.t14999", "21.T14999/ABC", True),
    (HANDLES_UNDER_THIS_PREFIX, "0.NA/21.T14999", "21.t14999/ABC", True),
    (HANDLES_UNDER_THIS_PREFIX, "0.NA/88.101", "0.NA/88.101", False),
    (HANDLES_UNDER_THIS_PREFIX, "0.NA/88.101", "0.NA/88.101.5", False),
    (HANDLES_UNDER_THIS_PREFIX, "0.NA/88.101", "88.101.5/x", False),
    (HANDLES_UNDER_THIS_PREFIX, "0.NA/88.101", "88.1010/x", False),
    (HANDLES_UNDER_THIS_PREFIX, "0.NA/88.101", "88.10/x", False),
    (HANDLES_UNDER_THIS_PREFIX, None, "88.101/x", False),
    # perm handles must be written 0.NA/<prefix>
    (HANDLES_UNDER_THIS_PREFIX, "88.101", "88.101/x", False),
    (DERIVED_PREFIXES, "88.101", "0.NA/88.101.5", False),
    (DERIVED_PREFIXES, "88.101", "88.101.5/x", False),
    (THIS_HANDLE, "88.101", "88.101/x", False),
    # unknown perms grant nothing
    ("listHandles", "0.NA/88.101", "88.101/x", False),
    ("Everything", None, "88.101/x", False),
]


@pytest.mark.parametrize(("perm", "granted", "handle", "expected"), COVERS, ids=[f"{p}:{g}:{h}" for p, g, h, _ in COVERS])
def test_covers(perm, granted, handle, expected):
    assert covers(Permission(perm, granted), handle) is expected
