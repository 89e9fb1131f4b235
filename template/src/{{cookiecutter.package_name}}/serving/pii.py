"""Personal data (the contract's `pii: true` columns) kept out of the prediction log.

With PII_HASH_KEY set, the log keeps a keyed hash of each such value (HMAC-SHA256, hex);
without it, the column is dropped from the line. Why a hash at all: a person who asks what
was decided about them, or to be forgotten (GDPR articles 15 and 17), must be found in the
log, and one key always gives one value the same hash, so `pii_hash(key, their e-mail)`
finds their lines although the log never held the e-mail. Why keyed: an unkeyed hash of an
e-mail is undone by hashing a list of e-mails. Destroying the key makes the old hashes
unlinkable to anyone.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from ..schema import Contract
from .settings import ServingSettings

HASH_PREFIX = "hmac-sha256:"


def pii_hash(key: bytes, value: Any) -> str:
    """The keyed hash the log holds for `value` (compute it to find a person's lines)."""
    digest = hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()
    return HASH_PREFIX + digest


class PiiMask:
    """Replaces the personal-data columns of a logged request's inputs (see the module)."""

    def __init__(self, columns: tuple[str, ...], key: bytes | None) -> None:
        self.columns = columns
        self.key = key

    def __call__(self, inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if not self.columns or not any(name in inputs for name in self.columns):
            return inputs
        masked = {name: values for name, values in inputs.items() if name not in self.columns}
        if self.key is not None:
            key = self.key
            for name in self.columns:
                if name in inputs:
                    masked[name] = [None if v is None else pii_hash(key, v) for v in inputs[name]]
        return masked


def pii_mask(contract: Contract, settings: ServingSettings) -> PiiMask | None:
    """The log's mask for the contract's personal data; None when it has none."""
    if not contract.pii:
        return None
    key = settings.pii_hash_key
    return PiiMask(contract.pii, None if key is None else key.get_secret_value().encode("utf-8"))
