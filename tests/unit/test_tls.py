"""The local node's CA and certificate (mmsearch.tls): chain, names, lifetimes, key usage, file modes, reuse."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from mmsearch import tls
from mmsearch.exceptions import NodeError

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_node_certificate_verifies_against_its_ca_and_not_another() -> None:
    ca_cert, ca_key = tls.make_ca("test CA", NOW)
    node_cert, _ = tls.make_node_cert(ca_cert, ca_key, "node", NOW)
    other_ca, _ = tls.make_ca("test CA", NOW)  # same name, other key: only the signature tells them apart
    assert tls.signed_by(node_cert, ca_cert)
    assert not tls.signed_by(node_cert, other_ca)
    assert tls.signed_by(ca_cert, ca_cert)  # self-signed


def test_ca_may_sign_certificates_and_the_node_certificate_may_not() -> None:
    ca_cert, ca_key = tls.make_ca("test CA", NOW)
    node_cert, _ = tls.make_node_cert(ca_cert, ca_key, "node", NOW)
    ca_usage = ca_cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ca_usage.critical and ca_usage.value.key_cert_sign and not ca_usage.value.digital_signature
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    node_usage = node_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert node_usage.digital_signature and not node_usage.key_cert_sign
    assert node_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    extended = node_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(extended) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_node_certificate_names_localhost_and_the_loopback_address_only() -> None:
    ca_cert, ca_key = tls.make_ca("test CA", NOW)
    node_cert, _ = tls.make_node_cert(ca_cert, ca_key, "node", NOW)
    san = node_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_validity_windows() -> None:
    ca_cert, ca_key = tls.make_ca("test CA", NOW)
    node_cert, _ = tls.make_node_cert(ca_cert, ca_key, "node", NOW)
    assert ca_cert.not_valid_before_utc == NOW - tls.CLOCK_SKEW
    assert ca_cert.not_valid_after_utc == NOW + dt.timedelta(days=tls.CA_VALID_DAYS)
    assert node_cert.not_valid_after_utc == NOW + dt.timedelta(days=tls.NODE_VALID_DAYS)
    assert tls.still_good(node_cert, NOW)
    assert not tls.still_good(node_cert, node_cert.not_valid_after_utc - dt.timedelta(days=1))
    assert not tls.still_good(node_cert, NOW - dt.timedelta(days=1))  # not valid yet
    # A node certificate never outlives the CA that vouches for it.
    late = ca_cert.not_valid_after_utc - dt.timedelta(days=100)
    short, _ = tls.make_node_cert(ca_cert, ca_key, "node", late)
    assert short.not_valid_after_utc == ca_cert.not_valid_after_utc


def test_files_are_written_with_private_keys_0600(tmp_path: Path) -> None:
    files = tls.ensure_node_tls(tmp_path / "certs", "n1", NOW)
    assert _mode(files.ca_key) == 0o600 and _mode(files.node_key) == 0o600
    assert _mode(files.ca_cert) == 0o644 and _mode(files.node_cert) == 0o644
    assert files.ca_cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert files.node_key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert not list((tmp_path / "certs").glob("*.tmp"))


def test_restart_reuses_good_files_byte_for_byte(tmp_path: Path) -> None:
    first = tls.ensure_node_tls(tmp_path, "n1", NOW)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    tls.ensure_node_tls(tmp_path, "n1", NOW + dt.timedelta(days=10))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert first.ca_cert.read_bytes() == before["ca.crt"]


def test_an_expiring_node_certificate_is_reissued_from_the_same_ca(tmp_path: Path) -> None:
    files = tls.ensure_node_tls(tmp_path, "n1", NOW)
    ca_before, node_before = files.ca_cert.read_bytes(), files.node_cert.read_bytes()
    later = NOW + dt.timedelta(days=tls.NODE_VALID_DAYS - 1)
    tls.ensure_node_tls(tmp_path, "n1", later)
    assert files.ca_cert.read_bytes() == ca_before  # clients' CA file stays valid
    renewed = tls.load_cert(files.node_cert)
    assert files.node_cert.read_bytes() != node_before and renewed is not None
    assert tls.signed_by(renewed, tls.load_cert(files.ca_cert))  # type: ignore[arg-type]
    assert tls.still_good(renewed, later)


def test_a_missing_or_foreign_ca_makes_a_new_chain(tmp_path: Path) -> None:
    files = tls.ensure_node_tls(tmp_path, "n1", NOW)
    ca_before = files.ca_cert.read_bytes()
    files.ca_key.unlink()  # a CA without its key cannot re-issue: start over
    tls.ensure_node_tls(tmp_path, "n1", NOW)
    new_ca = tls.load_cert(files.ca_cert)
    assert files.ca_cert.read_bytes() != ca_before and new_ca is not None
    assert tls.signed_by(tls.load_cert(files.node_cert), new_ca)  # type: ignore[arg-type]
    # A node certificate from another CA (a copied directory, say) is replaced, the CA kept.
    other_ca, other_key = tls.make_ca("elsewhere", NOW)
    foreign, foreign_key = tls.make_node_cert(other_ca, other_key, "n1", NOW)
    tls.write_node(files, foreign, foreign_key)
    tls.ensure_node_tls(tmp_path, "n1", NOW)
    assert tls.signed_by(tls.load_cert(files.node_cert), new_ca)  # type: ignore[arg-type]


def test_a_widened_key_mode_is_refused(tmp_path: Path) -> None:
    files = tls.ensure_node_tls(tmp_path, "n1", NOW)
    files.node_key.chmod(0o644)
    with pytest.raises(NodeError, match="chmod 600"):
        tls.ensure_node_tls(tmp_path, "n1", NOW)


def _handshake(files: tls.TlsFiles, ca_file: Path, server_hostname: str) -> None:
    """One real TLS handshake over loopback: the server serves the node pair, the client trusts ``ca_file``."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(files.node_cert, files.node_key)
    client_ctx = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
                    tls_conn.recv(1)
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with client_ctx.wrap_socket(raw, server_hostname=server_hostname) as conn:
                    conn.sendall(b"x")
        finally:
            thread.join(timeout=5)


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost"])
def test_openssl_accepts_the_chain_for_both_names(tmp_path: Path, hostname: str) -> None:
    files = tls.ensure_node_tls(tmp_path, "n1")
    _handshake(files, files.ca_cert, hostname)


def test_openssl_refuses_another_ca_and_another_name(tmp_path: Path) -> None:
    files = tls.ensure_node_tls(tmp_path / "a", "n1")
    other = tls.ensure_node_tls(tmp_path / "b", "n1")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(files, other.ca_cert, "127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(files, files.ca_cert, "example.com")
