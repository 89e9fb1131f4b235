"""API keys with roles: which key may call which route.

A key is a random string a client sends as `X-API-Key: <key>` or `Authorization: Bearer
<key>` (either header, not both: Prometheus and admin tools speak Bearer, clients of the
first version X-API-Key). The service keeps only each key's SHA-256 and its role:
`predict` (the model routes), `admin` (everything under /admin), `metrics` (/metrics, once a
metrics key exists). A role with no key leaves its routes open, except admin, whose routes
then do not exist.

Keys come from API_KEY (predict), ADMIN_TOKEN (admin) and METRICS_TOKEN (metrics), and from
API_KEYS_FILE: a file, or a folder of files (a mounted Kubernetes Secret, what a Vault Agent
template or the Secrets Store CSI driver writes), one `role:sha256hex` a line, `#` comments.
Several keys per role, so a new key can be added before the old one is removed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from .routes import Message
from .settings import ServingSettings, SettingsError

logger = logging.getLogger(__name__)


class KeyRole(StrEnum):
    PREDICT = "predict"
    ADMIN = "admin"
    METRICS = "metrics"


class KeyFileError(SettingsError):
    """API_KEYS_FILE cannot be read; the message names the file and the line."""


def _digest(key: str) -> bytes:
    # One SHA-256, no slow KDF: keys are 256 random bits (make-key), not guessable passwords,
    # and every request pays for the hash.
    return hashlib.sha256(key.encode()).digest()


def hash_key(key: str) -> str:
    """A key's line value in API_KEYS_FILE."""
    return _digest(key).hex()


def make_key(role: KeyRole) -> tuple[str, str]:
    """A new key and the line that grants it `role` in API_KEYS_FILE."""
    key = secrets.token_urlsafe(32)
    return key, f"{role.value}:{hash_key(key)}"


@dataclass(frozen=True)
class KeyRing:
    """Every accepted key's SHA-256 with its role; a key may appear once per role."""

    entries: tuple[tuple[KeyRole, bytes], ...] = ()

    def roles_of(self, key: str) -> set[KeyRole]:
        digest = _digest(key)
        # Every entry is compared, in constant time: the time taken says nothing about which
        # key (or how much of one) matched.
        return {role for role, known in self.entries if hmac.compare_digest(digest, known)}

    def guards(self, role: KeyRole) -> bool:
        return any(known_role is role for known_role, _ in self.entries)


def load_key_ring(settings: ServingSettings) -> KeyRing:
    """The keys of the environment and of API_KEYS_FILE; a bad file stops the service."""
    entries = [
        (role, _digest(key))
        for role, key in (
            (KeyRole.PREDICT, settings.api_key),
            (KeyRole.ADMIN, settings.admin_token),
            (KeyRole.METRICS, settings.metrics_token),
        )
        if key is not None
    ]
    if settings.api_keys_file is not None:
        entries += read_key_files(settings.api_keys_file)
    return KeyRing(tuple(entries))


def read_key_files(path: Path) -> list[tuple[KeyRole, bytes]]:
    """The keys of a file, or of every file in a folder but hidden ones (a Kubernetes Secret
    volume keeps its own bookkeeping in `..data` entries)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if not p.name.startswith(".") and p.is_file())
    elif path.is_file():
        files = [path]
    else:
        raise KeyFileError(f"API_KEYS_FILE={path}: no such file or folder")
    entries = [entry for file in files for entry in _read_key_file(file)]
    if not entries:
        raise KeyFileError(f"API_KEYS_FILE={path}: holds no key (lines `role:sha256hex`)")
    return entries


def _read_key_file(path: Path) -> list[tuple[KeyRole, bytes]]:
    try:
        mode = path.stat().st_mode
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: cannot be read as text: {exc}") from None
    if mode & stat.S_IRWXO:
        logger.warning(
            "key file is open to other users",
            extra={"path": str(path), "mode": f"{stat.S_IMODE(mode):04o}", "fix": "chmod o-rwx"},
        )
    entries = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        role, _, digest = line.partition(":")
        if role.strip() not in set(KeyRole) or not _is_sha256_hex(digest.strip()):
            # The line itself is not shown: it may be a key pasted in clear.
            raise KeyFileError(
                f"{path}, line {number}: expected `role:sha256hex` with a role among "
                f"{', '.join(KeyRole)} and 64 hex digits (`make-key` writes such lines)"
            )
        entries.append((KeyRole(role.strip()), bytes.fromhex(digest.strip())))
    return entries


def _is_sha256_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)


_API_KEY = APIKeyHeader(
    name="X-API-Key", scheme_name="ApiKey", auto_error=False, description="An API key"
)
_BEARER = HTTPBearer(
    scheme_name="Bearer", auto_error=False, description="An API key as a bearer token"
)


class RequireRole:
    """The one credential check: a FastAPI dependency for the routes of `role`."""

    def __init__(self, role: KeyRole, keys: KeyRing) -> None:
        self.role = role
        self.keys = keys

    async def __call__(
        self,
        request: Request,
        api_key: Annotated[str | None, Security(_API_KEY)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    ) -> None:
        key = api_key or (bearer.credentials if bearer else None)
        # One key a request: with both headers (one may be empty, or another scheme than
        # Bearer) neither is chosen, so a wrong key is never hidden by a right one.
        if "x-api-key" in request.headers and "authorization" in request.headers:
            key = None
        roles = self.keys.roles_of(key) if key else set()
        if not roles:
            raise HTTPException(
                401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"}
            )
        if self.role not in roles:
            raise HTTPException(403, f"this key does not carry the `{self.role}` role")


def guard(role: KeyRole, keys: KeyRing) -> dict[str, Any]:
    """`mount` arguments (app.py) that put `role`'s check on a router (none: no such key)."""
    if not keys.guards(role):
        return {}
    return {
        "dependencies": [Depends(RequireRole(role, keys))],
        "responses": {
            401: {"model": Message, "description": "Missing or wrong API key"},
            403: {"model": Message, "description": f"The key does not carry the `{role}` role"},
        },
    }
