"""The mesh CA: SPIFFE IDs, X.509-SVID signing, root rotation, bootstrap tokens.

See docs/security.md for how the control plane and the sidecar use these.
"""

from gossamer.control.ca.authority import Authority, AuthorityError, generate_root, load_authority
from gossamer.control.ca.files import InsecureKeyFileError
from gossamer.control.ca.mesh_ca import MeshCA, read_authority_files
from gossamer.control.ca.rotation import RotationError, RotationState
from gossamer.control.ca.spiffe import SpiffeId, SpiffeIdError, parse_spiffe_id, spiffe_id
from gossamer.control.ca.svid import DEFAULT_TTL_SECONDS, CsrError, issue_svid, load_csr
from gossamer.control.ca.tokens import BootstrapToken, TokenRegistry, TokenScope

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "Authority",
    "AuthorityError",
    "BootstrapToken",
    "CsrError",
    "InsecureKeyFileError",
    "MeshCA",
    "RotationError",
    "RotationState",
    "SpiffeId",
    "SpiffeIdError",
    "TokenRegistry",
    "TokenScope",
    "generate_root",
    "issue_svid",
    "load_authority",
    "load_csr",
    "parse_spiffe_id",
    "read_authority_files",
    "spiffe_id",
]
