"""The service's entry point: `python -m <package>.serving.server` (make serve, the image).

uvicorn with the app factory, on HOST:PORT with WORKERS processes, and what its command line
cannot say: with TLS_CERT_FILE and TLS_KEY_FILE, nothing older than TLS 1.2 (`--ssl-version`
pins one version, which would refuse TLS 1.3 too); without them, a loud warning when plain
HTTP listens beyond loopback. Graceful shutdown and workers are uvicorn's own.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import sys
from collections.abc import Callable
from typing import Any

import uvicorn

from .auth import load_key_ring
from .logs import configure_logging
from .settings import ServingSettings, SettingsError, load_settings

# Not __name__: run with -m, that is "__main__".
logger = logging.getLogger(f"{__package__}.server")

APP = f"{__package__}.app:create_app"


def tls_context(_: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's context (certificate, key, ALPN) with TLS 1.2 as the oldest version; built in
    each worker process, as uvicorn builds its own."""
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def warn_if_exposed(settings: ServingSettings) -> None:
    if settings.tls_cert_file is None and not is_loopback(settings.host):
        logger.warning(
            "PLAIN HTTP BEYOND LOOPBACK: API keys and records cross the network unencrypted; "
            "set TLS_CERT_FILE and TLS_KEY_FILE, or terminate TLS in front of the service "
            "(ingress, service mesh, load balancer)",
            extra={"host": settings.host, "port": settings.port},
        )


def uvicorn_options(settings: ServingSettings) -> dict[str, Any]:
    """`uvicorn.run` / `uvicorn.Config` arguments for the app factory."""
    tls = settings.tls_cert_file is not None
    return {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "ssl_certfile": settings.tls_cert_file,
        "ssl_keyfile": settings.tls_key_file,
        "ssl_context_factory": tls_context if tls else None,
    }


def main() -> None:
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        # Every worker reads the keys again; a bad key file stops here, once, before binding.
        load_key_ring(settings)
    except SettingsError as exc:
        sys.exit(f"error: {exc}")
    warn_if_exposed(settings)
    # log_config=None: uvicorn's loggers keep the JSON handler configure_logging set.
    uvicorn.run(APP, **uvicorn_options(settings), log_config=None)


if __name__ == "__main__":
    main()
