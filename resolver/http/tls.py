"""The HTTPS listener's certificate: the operator's, or a self-signed one made on first start."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from registry.errors import ConfigurationError

from ..config import Settings

VALID_DAYS = 3650


def certificate_paths(settings: Settings) -> tuple[Path, Path]:
    """(certificate, key): the configured pair, or the self-signed pair in the data directory."""
    listen = settings.listen
    if listen.tls_cert or listen.tls_key:
        if not (listen.tls_cert and listen.tls_key):
            raise ConfigurationError("give both --tls-cert and --tls-key, or neither")
        for path in (listen.tls_cert, listen.tls_key):
            if not path.is_file():
                raise ConfigurationError(f"TLS file {path} does not exist")
        return listen.tls_cert, listen.tls_key
    directory = settings.storage.data_dir.expanduser().resolve() / "tls"
    return directory / "cert.pem", directory / "key.pem"


def ensure_self_signed(cert_path: Path, key_path: Path, names: list[str], now: datetime.datetime) -> bool:
    """Write a self-signed certificate for ``names`` unless one exists; True if one was made."""
    if cert_path.exists() and key_path.exists():
        return False
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "idres node")])
    alt = []
    for name in dict.fromkeys(names):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context, making the self-signed certificate if needed; None without HTTPS."""
    listen = settings.listen
    if listen.tls_port is None:
        return None
    cert_path, key_path = certificate_paths(settings)
    if not (listen.tls_cert and listen.tls_key):
        names = ["localhost", "127.0.0.1", listen.advertised_address]
        ensure_self_signed(cert_path, key_path, names, datetime.datetime.now(datetime.timezone.utc))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert_path, key_path)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(f"cannot load the TLS certificate {cert_path} and key {key_path}: {exc}") from exc
    if listen.tls_client_ca is not None:
        request_client_certificates(context, listen.tls_client_ca)
    return context


def request_client_certificates(context: ssl.SSLContext, ca_file: Path) -> None:
    """Ask clients for a certificate at the handshake (optional), accepting those ``ca_file`` vouches for
    (an issuing CA, or self-signed client certificates listed one after another)."""
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(f"cannot load the client CA file {ca_file} (IDRES_TLS_CLIENT_CA): {exc}") from exc
    context.verify_mode = ssl.CERT_OPTIONAL
