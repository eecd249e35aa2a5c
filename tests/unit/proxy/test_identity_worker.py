"""The identity worker: the child process that does the sidecar's certificate work, so
`cryptography` never stays resident in the sidecar."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gossamer.control.ca import MeshCA
from gossamer.proxy import identity
from gossamer.proxy.identity import IdentityError, WorkloadIdentity, run_worker
from gossamer.proxy.identity_worker import answer

REVIEWS = "spiffe://cluster.local/ns/default/sa/reviews"


def test_the_identity_module_does_not_import_cryptography() -> None:
    code = "import sys, gossamer.proxy.identity; print('cryptography' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert out.stdout.strip() == b"False"


def test_one_worker_run_answers_one_request_over_pipes() -> None:
    key = run_worker({"op": "key"})["key"]
    assert key.startswith("-----BEGIN PRIVATE KEY-----")
    csr = run_worker({"op": "csr", "key": key, "expected_id": REVIEWS})["csr"]
    assert csr.startswith("-----BEGIN CERTIFICATE REQUEST-----")


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ({"op": "launch"}, "unknown op"),
        ({"op": "csr"}, "key"),  # no key given
        ({"op": "csr", "key": "not a key"}, "PEM"),
        ({"op": "check", "key": "x", "chain": "junk", "bundle": "junk"}, "X.509-SVID"),
    ],
)
def test_bad_requests_are_refused_not_crashed(request_: dict[str, str], error: str) -> None:
    assert error in answer(request_)["error"]


def test_garbage_on_stdin_is_an_error_answer() -> None:
    done = subprocess.run(
        identity.WORKER, input=b"{not json", capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 0 and "error" in json.loads(done.stdout)


def test_a_worker_that_fails_is_an_identity_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity, "WORKER", (sys.executable, "-c", "raise SystemExit(3)"))
    with pytest.raises(IdentityError, match=r"failed \(3\)"):
        run_worker({"op": "key"})


def test_the_key_stays_the_same_across_renewals(tmp_path_factory: pytest.TempPathFactory) -> None:
    ca = MeshCA.create(tmp_path_factory.mktemp("ca") / "ca", "cluster.local")
    workload = WorkloadIdentity(REVIEWS)
    key = workload.key_pem()
    first = workload.install(ca.sign_csr(workload.csr_pem(), REVIEWS, 600), ca.trust_bundle())
    second = workload.install(ca.sign_csr(workload.csr_pem(), REVIEWS, 600), ca.trust_bundle())
    assert workload.key_pem() == key and first.spiffe_id == second.spiffe_id == REVIEWS
    assert workload.tls_material()[1] == key
