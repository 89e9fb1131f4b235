"""The server entry point (serving/server.py): TLS on a real uvicorn on loopback, with the
options `make serve` and the image use and a self-signed certificate made here; the warning
for plain HTTP beyond loopback."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp

from {{ cookiecutter.package_name }}.serving.server import uvicorn_options, warn_if_exposed
from {{ cookiecutter.package_name }}.serving.settings import ServingSettings

from .conftest import free_port


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _hello() -> ASGIApp:
    # The TLS layer is the server's, whatever the app: a one-line app starts in milliseconds.
    return PlainTextResponse("hello")


@contextmanager
def _running(settings: ServingSettings, **overrides: Any) -> Iterator[int]:
    """uvicorn with uvicorn_options(settings) (and overrides), in a thread: its port."""
    options = {**uvicorn_options(settings), **overrides}
    server = uvicorn.Server(uvicorn.Config(_hello, **options, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield settings.port
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def tls_settings(tmp_path_factory: pytest.TempPathFactory) -> ServingSettings:
    cert_file, key_file = _self_signed(tmp_path_factory.mktemp("tls"))
    return ServingSettings(
        port=free_port(), tls_cert_file=cert_file, tls_key_file=key_file, prediction_log_dir=None
    )


@pytest.fixture(scope="module")
def tls_server(tls_settings: ServingSettings) -> Iterator[tuple[int, Path]]:
    """The service's TLS, on loopback."""
    assert tls_settings.tls_cert_file is not None
    with _running(tls_settings) as port:
        yield port, tls_settings.tls_cert_file


def _client(cert_file: Path, lowest: ssl.TLSVersion, highest: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cert_file)
    context.minimum_version, context.maximum_version = lowest, highest
    return context


def _get(port: int, context: ssl.SSLContext) -> tuple[str, bytes]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        return str(tls.version()), tls.recv(4096)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_connect(tls_server: tuple[int, Path], version: ssl.TLSVersion) -> None:
    port, cert_file = tls_server
    negotiated, answer = _get(port, _client(cert_file, version, version))
    assert negotiated == ("TLSv1.2" if version is ssl.TLSVersion.TLSv1_2 else "TLSv1.3")
    assert answer.startswith(b"HTTP/1.1 200")


def _anything_goes(_: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    context = default()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is: that is the point
        context.minimum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def test_tls_1_1_is_refused_by_the_server(
    tls_server: tuple[int, Path], tls_settings: ServingSettings
) -> None:
    port, cert_file = tls_server
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = _client(cert_file, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1)
    # Security level 0: at the default level OpenSSL would not even offer TLS 1.1.
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    # The refusal is the server's: the same client completes TLS 1.1 with a server that
    # allows it (asyncio's TLS hangs up without an alert, so the error alone cannot tell).
    lenient = tls_settings.model_copy(update={"port": free_port()})
    with _running(lenient, ssl_context_factory=_anything_goes) as lenient_port:
        assert _get(lenient_port, old)[0] == "TLSv1.1"
    with pytest.raises(ssl.SSLError):
        _get(port, old)


def test_tls_needs_both_files(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").touch()
    with pytest.raises(ValidationError, match="TLS needs both TLS_CERT_FILE and TLS_KEY_FILE"):
        ServingSettings(tls_cert_file=tmp_path / "cert.pem")
    with pytest.raises(ValidationError, match="tls_key_file\n  Path does not point to a file"):
        ServingSettings(tls_cert_file=tmp_path / "cert.pem", tls_key_file=tmp_path / "key.pem")


@pytest.mark.parametrize(
    ("host", "tls", "warned"),
    [
        ("0.0.0.0", False, True),
        ("::", False, True),
        ("api.internal", False, True),
        ("127.0.0.1", False, False),
        ("localhost", False, False),
        ("::1", False, False),
        ("0.0.0.0", True, False),
    ],
)
def test_plain_http_beyond_loopback_is_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, host: str, tls: bool, warned: bool
) -> None:
    (tmp_path / "c").touch()
    tls_file = tmp_path / "c" if tls else None
    with caplog.at_level(logging.WARNING):
        warn_if_exposed(ServingSettings(host=host, tls_cert_file=tls_file, tls_key_file=tls_file))
    assert any("PLAIN HTTP BEYOND LOOPBACK" in r.message for r in caplog.records) is warned
