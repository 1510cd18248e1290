"""A private CA and a node certificate for the local node's HTTP TLS, made with ``cryptography``.

``mmsearch node start --secure`` serves HTTPS with a certificate signed by a CA of its own;
clients trust that CA through ``MMSEARCH_ES_CA_CERTS`` (``Settings.ca_certs``). The files are
PEM in the node's config dir (Elasticsearch may only read certificates from there):

================  =========================================================  ====
file              what                                                       mode
================  =========================================================  ====
``ca.crt``        self-signed CA (basic constraints CA, key usage cert sign)  0644
``ca.key``        its private key, kept to re-issue the node certificate       0600
``node.crt``      node certificate: SAN DNS:localhost, IP:127.0.0.1           0644
``node.key``      its private key                                              0600
================  =========================================================  ====

A restart reuses the files whenever they are still good (``ensure_node_tls``): clients that
copied ``ca.crt`` keep a valid trust anchor. Only an expiring node certificate is re-issued (from
the same CA); only a missing, unreadable or expiring CA makes a new CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mmsearch.exceptions import NodeError

#: Names the node certificate is valid for: the node binds to 127.0.0.1 only.
NODE_DNS_NAMES = ("localhost",)
NODE_IP_ADDRESSES = ("127.0.0.1",)
#: Lifetimes. Why 10 years for the CA: clients copy ca.crt once; re-issuing it would break them.
#: Why ~2 years for the node certificate: re-issued silently from the same CA, so a short life costs nothing.
CA_VALID_DAYS = 3650
NODE_VALID_DAYS = 825
#: A certificate that expires within this margin is replaced on the next start, not served until it breaks.
RENEW_BEFORE_DAYS = 30
#: Why backdate notBefore: a client whose clock is a little behind would otherwise see "not yet valid".
CLOCK_SKEW = dt.timedelta(minutes=5)

PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class TlsFiles:
    """Where one node's PEM files are (``directory`` is typically ``<node_dir>/config/certs``)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def node_cert(self) -> Path:
        return self.directory / "node.crt"

    @property
    def node_key(self) -> Path:
        return self.directory / "node.key"


def new_private_key() -> PrivateKey:
    """P-256: accepted by every TLS stack ES and the Python client use, and fast to make."""
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mmsearch local node"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str, now: dt.datetime | None = None,
            key: PrivateKey | None = None) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed CA that may sign certificates (and CRLs) and nothing else."""
    now = now or dt.datetime.now(dt.timezone.utc)
    key = key or new_private_key()
    subject = _name(common_name)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + dt.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_node_cert(ca_cert: x509.Certificate, ca_key: PrivateKey, common_name: str,
                   now: dt.datetime | None = None, key: PrivateKey | None = None,
                   dns_names: tuple[str, ...] = NODE_DNS_NAMES,
                   ip_addresses: tuple[str, ...] = NODE_IP_ADDRESSES) -> tuple[x509.Certificate, PrivateKey]:
    """A TLS server certificate for the node, signed by the CA, valid for ``dns_names`` and ``ip_addresses``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    key = key or new_private_key()
    san: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    san += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
    not_after = min(now + dt.timedelta(days=NODE_VALID_DAYS), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def signed_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """Whether ``ca_cert`` issued ``cert`` (issuer name and signature both match)."""
    if cert.issuer != ca_cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def still_good(cert: x509.Certificate, now: dt.datetime | None = None) -> bool:
    """Valid now and for at least ``RENEW_BEFORE_DAYS`` more."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now > dt.timedelta(days=RENEW_BEFORE_DAYS)


# --- files ---------------------------------------------------------------------------------


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8: ES reads it without a keystore passphrase; the 0600 mode protects it."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_pem(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with ``mode`` from the first byte (a key is never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)  # the umask may have narrowed the mode given to open()
    tmp.replace(path)


def load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def load_key(path: Path) -> PrivateKey | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _matches(cert: x509.Certificate, key: PrivateKey) -> bool:
    return cert.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]


def write_ca(files: TlsFiles, cert: x509.Certificate, key: PrivateKey) -> None:
    write_pem(files.ca_key, key_pem(key), 0o600)
    write_pem(files.ca_cert, cert_pem(cert), 0o644)


def write_node(files: TlsFiles, cert: x509.Certificate, key: PrivateKey) -> None:
    write_pem(files.node_key, key_pem(key), 0o600)
    write_pem(files.node_cert, cert_pem(cert), 0o644)


def ensure_node_tls(directory: Path, node_name: str, now: dt.datetime | None = None) -> TlsFiles:
    """The node's CA and certificate in ``directory``: reused when still good, else (re)made.

    Reuse keeps ``ca.crt`` byte-identical across restarts, so a client's CA file stays valid.
    """
    files = TlsFiles(Path(directory))
    now = now or dt.datetime.now(dt.timezone.utc)
    ca_cert, ca_key = load_cert(files.ca_cert), load_key(files.ca_key)
    if ca_cert is None or ca_key is None or not _matches(ca_cert, ca_key) or not still_good(ca_cert, now):
        ca_cert, ca_key = make_ca(f"mmsearch {node_name} CA", now)
        write_ca(files, ca_cert, ca_key)
    node_cert, node_key = load_cert(files.node_cert), load_key(files.node_key)
    if (node_cert is None or node_key is None or not _matches(node_cert, node_key)
            or not signed_by(node_cert, ca_cert) or not still_good(node_cert, now)):
        node_cert, node_key = make_node_cert(ca_cert, ca_key, f"mmsearch {node_name}", now)
        write_node(files, node_cert, node_key)
    for path in (files.ca_key, files.node_key):
        if path.stat().st_mode & 0o077:
            raise NodeError("a TLS private key is readable by others; fix its mode (chmod 600)", path=str(path))
    return files
