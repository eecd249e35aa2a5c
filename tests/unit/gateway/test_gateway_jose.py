"""JWT verification with real keys, and the attacks it must refuse."""

from __future__ import annotations

import json

import pytest
from jwtkit import SigningKey, b64, hs256_with, jwks, unsigned

from gossamer.gateway.jose import (
    MAX_TOKEN_BYTES,
    Expectations,
    TokenError,
    b64url_decode,
    parse_jwks,
    verify,
)

NOW = 1_800_000_000.0
EXPECT = Expectations("https://issuer.example", ("api",), 30.0)
CLAIMS = {"iss": "https://issuer.example", "aud": "api", "sub": "alice", "exp": NOW + 300}


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {alg: SigningKey(alg, f"k-{alg}") for alg in ("RS256", "ES256", "EdDSA")}


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_each_algorithm_verifies(keys: dict[str, SigningKey], alg: str) -> None:
    known = parse_jwks(jwks(*keys.values()))
    claims = verify(keys[alg].sign(CLAIMS), known, EXPECT, NOW)
    assert claims["sub"] == "alice"


def _refused(token: str, keyset: list, now: float = NOW) -> str:
    with pytest.raises(TokenError) as info:
        verify(token, keyset, EXPECT, now)
    return str(info.value)


def test_attacks_and_bad_claims(keys: dict[str, SigningKey]) -> None:
    rsa = keys["RS256"]
    known = parse_jwks(jwks(*keys.values()))
    assert "not accepted" in _refused(unsigned(CLAIMS), known)
    confusion = hs256_with(rsa.public_pem(), CLAIMS, rsa.kid)
    assert "not accepted" in _refused(confusion, known)
    assert _refused(rsa.sign({**CLAIMS, "exp": NOW - 31}), known) == "token expired"
    assert verify(rsa.sign({**CLAIMS, "exp": NOW - 29}), known, EXPECT, NOW)  # within leeway
    assert _refused(rsa.sign({**CLAIMS, "nbf": NOW + 60}), known) == "token not yet valid"
    assert _refused(rsa.sign({**CLAIMS, "iss": "https://evil"}), known) == "wrong issuer"
    assert _refused(rsa.sign({**CLAIMS, "aud": ["other"]}), known) == "wrong audience"
    no_exp = {k: v for k, v in CLAIMS.items() if k != "exp"}
    assert _refused(rsa.sign(no_exp), known) == "token has no exp"
    assert _refused(rsa.sign(CLAIMS, {"kid": "nope"}), known) == "no key for this token"
    # Tampered payload: a valid signature over other claims.
    head, _, sig = rsa.sign(CLAIMS).split(".")
    forged = b64(json.dumps({**CLAIMS, "sub": "admin"}).encode())
    assert _refused(f"{head}.{forged}.{sig}", known) == "bad signature"
    # A token signed by a key we do not trust, claiming a trusted kid.
    stranger = SigningKey("RS256", rsa.kid)
    assert _refused(stranger.sign(CLAIMS), known) == "bad signature"
    # An ES256 token naming the RSA key's kid: the key's type decides, no match.
    assert _refused(keys["ES256"].sign(CLAIMS, {"kid": rsa.kid}), known) == "no key for this token"
    assert _refused("x" * (MAX_TOKEN_BYTES + 1), known) == "token too large"
    assert _refused("a.b", known) == "malformed token"
    assert _refused("!!.??.**", known) == "malformed base64url"


def test_jwks_skips_keys_it_cannot_use(keys: dict[str, SigningKey]) -> None:
    doc = json.loads(jwks(*keys.values()))
    doc["keys"] += [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {**keys["RS256"].jwk(), "kid": "enc", "use": "enc"},
        {**keys["RS256"].jwk(), "kid": "mislabelled", "alg": "HS256"},
        {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
    ]
    parsed = parse_jwks(json.dumps(doc))
    assert sorted(k.kid or "" for k in parsed) == ["k-ES256", "k-EdDSA", "k-RS256"]
    with pytest.raises(ValueError):
        parse_jwks("not json")
    assert b64url_decode("aGk") == b"hi"
