"""Credentials the control plane accepts: token records in `<data-dir>/credentials/`.

    tokens.json   every token's record (id, SHA-256 of the secret, scope, expiry), mode 0600
    admin.token   the admin credential's text, created at first start, mode 0600

Records live in a 0600 file rather than the store on purpose: the store is what the
resource API lists and exports (and may be a shared etcd), while these are secrets' digests
that only this control plane needs; the file keeps them out of every API answer by design.
Only the admin credential's text is kept: it is the local-convenience path (the CLI and
sidecars on this machine, as this user, read it). Every other token is shown once.

A token handed to a sidecar also carries the CA's fingerprint after `#` (kubeadm's
discovery hash): `gst_<id>.<secret>#sha256:<hex>`. Only the part before `#` is a secret.
"""

from __future__ import annotations

import hashlib
import json
import ssl
from pathlib import Path

from gossamer.control.ca.files import make_private_dir, read_private_file, write_private_file
from gossamer.control.ca.tokens import BootstrapToken, TokenRegistry, TokenScope

TOKENS_FILE = "tokens.json"
ADMIN_FILE = "admin.token"
ADMIN_NAME = "admin"
ADMIN_TTL_SECONDS = 10 * 365 * 86400.0
FINGERPRINT_PREFIX = "sha256:"


class Credentials:
    def __init__(self, directory: Path, registry: TokenRegistry) -> None:
        self.directory = directory
        self.registry = registry

    @classmethod
    def open(cls, directory: Path, now: float) -> Credentials:
        """Load the records; the first time, create the admin credential."""
        make_private_dir(directory)
        path = directory / TOKENS_FILE
        records: list[BootstrapToken] = []
        if path.exists():
            try:
                data = json.loads(read_private_file(path))
                records = [BootstrapToken.from_json(r) for r in data["tokens"]]
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}: not a token file ({exc})") from None
        creds = cls(directory, TokenRegistry(records))
        if not (directory / ADMIN_FILE).exists():
            text, _ = creds.issue(TokenScope.operator(ADMIN_NAME, "admin"), ADMIN_TTL_SECONDS, now)
            write_private_file(directory / ADMIN_FILE, text.encode() + b"\n")
        return creds

    def issue(
        self, scope: TokenScope, ttl_seconds: float, now: float
    ) -> tuple[str, BootstrapToken]:
        text, record = BootstrapToken.issue(scope, ttl_seconds, now)
        self.registry.prune(now)
        self.registry.add(record)
        self._save()
        return text, record

    def revoke(self, token_id: str) -> bool:
        found = self.registry.revoke(token_id)
        if found:
            self._save()
        return found

    def verify(self, token_text: str, now: float) -> TokenScope | None:
        return self.registry.verify(token_text, now)

    def records(self) -> list[BootstrapToken]:
        return sorted(self.registry.records(), key=lambda r: (r.expires_at, r.token_id))

    def _save(self) -> None:
        data = {"tokens": [r.to_json() for r in self.registry.records()]}
        write_private_file(self.directory / TOKENS_FILE, json.dumps(data, indent=2).encode())


def read_admin_token(credentials_dir: Path) -> str | None:
    """The admin credential's text, if this user may read it (0600, owned by us)."""
    try:
        return read_private_file(credentials_dir / ADMIN_FILE).decode().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def ca_fingerprint(bundle_pem: bytes) -> str:
    """`sha256:<hex>` of the DER of the bundle's first certificate (the signing root)."""
    first = bundle_pem.decode("ascii").split("-----END CERTIFICATE-----")[0]
    der = ssl.PEM_cert_to_DER_cert(first + "-----END CERTIFICATE-----\n")
    return FINGERPRINT_PREFIX + hashlib.sha256(der).hexdigest()
