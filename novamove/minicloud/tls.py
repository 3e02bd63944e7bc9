"""The minicloud's own certificate authority and one server certificate for 127.0.0.1.

Generated once per state directory (kept across restarts, so a client's copy of the CA keeps
working) with the `cryptography` package. Every file is written owner-only (0600).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 825


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ensure(ca_cert: Path, ca_key: Path, server_cert: Path, server_key: Path,
           name: str = "novamove minicloud") -> bool:
    """Create the CA and the server certificate unless all four files exist; True if created."""
    if all(p.exists() for p in (ca_cert, ca_key, server_cert, server_key)):
        return False
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(minutes=5)
    not_after = now + datetime.timedelta(days=VALID_DAYS)

    ca_private = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_private.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(not_before).not_valid_after(not_after)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_private.public_key()),
                         critical=False)
          .sign(ca_private, hashes.SHA256()))

    srv_private = ec.generate_private_key(ec.SECP256R1())
    srv = (x509.CertificateBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
           .issuer_name(ca_name)
           .public_key(srv_private.public_key())
           .serial_number(x509.random_serial_number())
           .not_valid_before(not_before).not_valid_after(not_after)
           .add_extension(x509.SubjectAlternativeName([
               x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
               critical=False)
           .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
           .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                          critical=False)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
               ca_private.public_key()), critical=False)
           .sign(ca_private, hashes.SHA256()))

    _write(ca_key, _key_pem(ca_private))
    _write(ca_cert, ca.public_bytes(serialization.Encoding.PEM))
    _write(server_key, _key_pem(srv_private))
    _write(server_cert, srv.public_bytes(serialization.Encoding.PEM))
    return True
