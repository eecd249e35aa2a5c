"""The sidecar's credential sources: token text, token files (0600 only), the local admin
credential (loopback, ours, 0600), CA fingerprints from a bundle."""

from __future__ import annotations

import hashlib
import os
import ssl
from pathlib import Path

import pytest

from gossamer.proxy.bootstrap import (
    BootstrapError,
    bundle_fingerprints,
    is_loopback_url,
    local_admin_token,
    read_token,
    split_token,
)
from gossamer.proxy.cli import parse_args


def test_token_text_and_fingerprint() -> None:
    cred = split_token("gst_ab.cd#sha256:" + "0" * 64 + "\n")
    assert cred.token == "gst_ab.cd" and cred.fingerprint == "sha256:" + "0" * 64
    assert split_token("gst_ab.cd").fingerprint is None
    with pytest.raises(BootstrapError):
        split_token("gst_ab.cd#md5:00")


def test_token_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("gst_ab.cd\n")
    os.chmod(path, 0o644)
    with pytest.raises(BootstrapError, match="chmod 600"):
        read_token(None, str(path))
    os.chmod(path, 0o600)
    assert read_token(None, str(path)).token == "gst_ab.cd"
    assert read_token("gst_x.y", str(path)).token == "gst_x.y"  # --token wins
    with pytest.raises(BootstrapError, match="cannot read"):
        read_token(None, str(tmp_path / "missing"))
    argv = ["proxy", "--service", "a", "--app-port", "1", "--token-file", str(tmp_path / "no")]
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_local_admin_token_only_on_loopback_and_private(tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "admin.token").write_text("gst_a.b\n")
    os.chmod(creds / "admin.token", 0o600)
    assert local_admin_token("http://127.0.0.1:15010", tmp_path) == "gst_a.b"
    assert local_admin_token("http://localhost:1", tmp_path) == "gst_a.b"
    assert local_admin_token("http://10.0.0.5:15010", tmp_path) is None
    os.chmod(creds / "admin.token", 0o640)
    assert local_admin_token("http://127.0.0.1:15010", tmp_path) is None
    assert local_admin_token("http://127.0.0.1:15010", tmp_path / "elsewhere") is None
    assert is_loopback_url("http://[::1]:80") and not is_loopback_url("http://example.com")


def test_bundle_fingerprints_match_the_control_planes(tmp_path: Path) -> None:
    from gossamer.control.ca import MeshCA
    from gossamer.control.credentials import ca_fingerprint

    bundle = MeshCA.create(tmp_path / "ca", "cluster.local").trust_bundle()
    der = ssl.PEM_cert_to_DER_cert(bundle.decode())
    assert (
        bundle_fingerprints(bundle.decode())
        == {"sha256:" + hashlib.sha256(der).hexdigest()}
        == {ca_fingerprint(bundle)}
    )
