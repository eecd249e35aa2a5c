"""The mesh CA: signing authorities kept in a directory, SVID signing, root rotation.

Directory layout (created 0700):
    state.json        {"trustDomain": "...", "signing": "<id>", "trusted": ["<id>", ...]}
    <id>.cert.pem     CA certificate (then its chain, for a user-supplied intermediate)
    <id>.key.pem      its private key, mode 0600 (refused if group/others can read it)
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from gossamer.control.ca.authority import (
    DEFAULT_ROOT_VALIDITY,
    Authority,
    AuthorityError,
    generate_root,
    load_authority,
)
from gossamer.control.ca.files import (
    make_private_dir,
    read_private_file,
    write_private_file,
    write_public_file,
)
from gossamer.control.ca.rotation import Phase, RotationState
from gossamer.control.ca.spiffe import parse_spiffe_id, validate_trust_domain
from gossamer.control.ca.svid import DEFAULT_TTL_SECONDS, issue_svid

STATE_FILE = "state.json"


class MeshCA:
    def __init__(
        self,
        directory: Path,
        trust_domain: str,
        state: RotationState,
        authorities: dict[str, Authority],
    ) -> None:
        self.directory = directory
        self.trust_domain = trust_domain
        self._state = state
        self._authorities = authorities

    # Opening ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path | str,
        trust_domain: str,
        *,
        ca_cert: Path | str | None = None,
        ca_key: Path | str | None = None,
        validity: dt.timedelta = DEFAULT_ROOT_VALIDITY,
        now: dt.datetime | None = None,
    ) -> MeshCA:
        """Load the CA in `directory`; the first time, import `--ca-cert/--ca-key` or
        generate a self-signed root."""
        directory = Path(directory)
        if (ca_cert is None) != (ca_key is None):
            raise AuthorityError("--ca-cert and --ca-key go together; give both or neither")
        if (directory / STATE_FILE).exists():
            ca = cls.load(directory)
            if ca.trust_domain != trust_domain:
                raise AuthorityError(
                    f"{directory} holds a CA for trust domain {ca.trust_domain!r}, "
                    f"not {trust_domain!r}"
                )
            if ca_cert is not None and ca_key is not None:
                supplied = _read_authority(Path(ca_cert), Path(ca_key))
                if supplied.id not in ca._authorities:
                    raise AuthorityError(
                        f"{directory} already holds a CA; to move to {ca_cert}, rotate to it "
                        "(begin_rotation, switch_signing, finish_rotation)"
                    )
            return ca
        if ca_cert is not None and ca_key is not None:
            authority = _read_authority(Path(ca_cert), Path(ca_key))
        else:
            authority = generate_root(validate_trust_domain(trust_domain), now, validity)
        return cls._initialise(directory, trust_domain, authority)

    @classmethod
    def create(
        cls,
        directory: Path | str,
        trust_domain: str,
        *,
        validity: dt.timedelta = DEFAULT_ROOT_VALIDITY,
        now: dt.datetime | None = None,
    ) -> MeshCA:
        directory = Path(directory)
        if (directory / STATE_FILE).exists():
            raise AuthorityError(f"{directory} already holds a CA")
        root = generate_root(validate_trust_domain(trust_domain), now, validity)
        return cls._initialise(directory, trust_domain, root)

    @classmethod
    def load(cls, directory: Path | str) -> MeshCA:
        directory = Path(directory)
        try:
            data = json.loads((directory / STATE_FILE).read_text())
            state = RotationState.from_json(data)
            trust_domain = validate_trust_domain(data.get("trustDomain", ""))
        except (OSError, ValueError) as exc:
            raise AuthorityError(f"{directory / STATE_FILE}: {exc}") from None
        authorities = {
            aid: _read_authority(directory / f"{aid}.cert.pem", directory / f"{aid}.key.pem")
            for aid in state.trusted
        }
        return cls(directory, trust_domain, state, authorities)

    @classmethod
    def _initialise(cls, directory: Path, trust_domain: str, authority: Authority) -> MeshCA:
        validate_trust_domain(trust_domain)
        make_private_dir(directory)
        ca = cls(directory, trust_domain, RotationState(authority.id, (authority.id,)), {})
        ca._add(authority)
        ca._save_state()
        return ca

    # Signing ------------------------------------------------------------------------------

    @property
    def signing_authority(self) -> Authority:
        return self._authorities[self._state.signing]

    @property
    def phase(self) -> Phase:
        return self._state.phase

    def sign_csr(
        self,
        csr_pem: bytes | str,
        spiffe_id: str,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        now: dt.datetime | None = None,
    ) -> bytes:
        """An X.509-SVID for `spiffe_id` over the CSR's key (leaf PEM, then intermediates).
        Raises CsrError / ValueError for bad input; never trusts the CSR's names."""
        if parse_spiffe_id(spiffe_id).trust_domain != self.trust_domain:
            raise ValueError(f"{spiffe_id!r} is outside trust domain {self.trust_domain!r}")
        return issue_svid(self.signing_authority, csr_pem, spiffe_id, ttl_seconds, now)

    def trust_bundle(self) -> bytes:
        """PEM of every authority currently trusted (two during a rotation)."""
        anchors = (self._authorities[aid].anchor() for aid in self._state.trusted)
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in anchors)

    # Rotation -----------------------------------------------------------------------------

    def begin_rotation(
        self,
        new_authority: Authority | None = None,
        *,
        validity: dt.timedelta = DEFAULT_ROOT_VALIDITY,
        now: dt.datetime | None = None,
    ) -> Authority:
        """Trust a new root (generated unless given) next to the old; the old still signs."""
        authority = new_authority or generate_root(self.trust_domain, now, validity)
        state = self._state.begin(authority.id)
        self._add(authority)
        self._state = state
        self._save_state()
        return authority

    def switch_signing(self) -> None:
        """The new root signs from now on; both stay in the bundle."""
        self._state = self._state.switch()
        self._save_state()

    def finish_rotation(self) -> None:
        """Drop the old root from the bundle and delete its key."""
        self._state, retired = self._state.finish()
        self._save_state()
        self._authorities.pop(retired, None)
        for suffix in (".key.pem", ".cert.pem"):
            (self.directory / f"{retired}{suffix}").unlink(missing_ok=True)

    # Files --------------------------------------------------------------------------------

    def _add(self, authority: Authority) -> None:
        write_private_file(self.directory / f"{authority.id}.key.pem", authority.key_pem())
        write_public_file(self.directory / f"{authority.id}.cert.pem", authority.cert_pem())
        self._authorities[authority.id] = authority

    def _save_state(self) -> None:
        data = {"trustDomain": self.trust_domain, **self._state.to_json()}
        write_public_file(self.directory / STATE_FILE, json.dumps(data, indent=2).encode())


def read_authority_files(cert_path: Path | str, key_path: Path | str) -> Authority:
    """Load a user-supplied CA, refusing a key file that group or others can read."""
    return _read_authority(Path(cert_path), Path(key_path))


def _read_authority(cert_path: Path, key_path: Path) -> Authority:
    try:
        key_pem = read_private_file(key_path)  # InsecureKeyFileError passes through
        cert_pem = cert_path.read_bytes()
    except FileNotFoundError as exc:
        raise AuthorityError(f"{exc.filename}: no such file") from None
    try:
        return load_authority(cert_pem, key_pem)
    except AuthorityError as exc:
        raise AuthorityError(f"{cert_path}: {exc}") from None
