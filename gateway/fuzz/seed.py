#!/usr/bin/env python3
"""Makes the fixed keys of the `jwt` and `signature` fuzz targets and their seed tokens.

Writes fixtures/jwks.json (the identity provider's published keys the `jwt` target trusts),
fixtures/signer.der (the client certificate the `signature` target takes as the TLS peer) and
the tokens, named by what they test, under fixtures/jwt and fixtures/signature, and as seeds
under corpus/jwt and corpus/signature. Fresh keys every run; the private keys are not kept,
so run it again (and commit fixtures and seeds together) to get more valid tokens.
Needs python3-cryptography. Times are relative to NOW, the clock the targets pass in.
"""
import base64, datetime, hashlib, json, os, pathlib
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

NOW = 4_000_000_000  # keep in step with gateway/src/fuzzing.rs
ISSUER = "https://id.example.test/realms/region"
AUDIENCE = "raccordo-api"
SIG_AUDIENCE = "https://raccordo.example.test"
BODY = b'{"fuzz":true}'  # keep in step with gateway/src/fuzzing.rs

here = pathlib.Path(__file__).parent
b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def jenc(v): return b64u(json.dumps(v, separators=(",", ":")).encode())
def intb(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return n.to_bytes(size, "big")

es = ec.generate_private_key(ec.SECP256R1())
ed = ed25519.Ed25519PrivateKey.generate()
rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)

def sign(alg, key, msg):
    if alg == "ES256":
        r, s = decode_dss_signature(key.sign(msg, ec.ECDSA(hashes.SHA256())))
        return intb(r, 32) + intb(s, 32)
    if alg == "EdDSA":
        return key.sign(msg)
    if alg == "RS256":
        return key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    if alg == "PS256":
        return key.sign(msg, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    raise ValueError(alg)

def jwt(header, claims, key):
    head = jenc(header) + "." + jenc(claims)
    return head + "." + b64u(sign(header["alg"], key, head.encode()))

pe, pd, pr = es.public_key().public_numbers(), ed.public_key(), rs.public_key().public_numbers()
jwks = {"keys": [
    {"kty": "EC", "crv": "P-256", "kid": "es", "alg": "ES256", "use": "sig",
     "x": b64u(intb(pe.x, 32)), "y": b64u(intb(pe.y, 32))},
    {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "use": "sig",
     "x": b64u(pd.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))},
    {"kty": "RSA", "kid": "rs", "use": "sig", "n": b64u(intb(pr.n)), "e": b64u(intb(pr.e))},
]}
(here / "fixtures").mkdir(exist_ok=True)
(here / "fixtures" / "jwks.json").write_text(json.dumps(jwks, indent=1) + "\n")

def write(target, name, data):
    # Named under fixtures/ (the unit tests check each one's verdict), and as a corpus seed
    # (cargo fuzz cmin renames corpus files after their digest).
    for d, n in ((here / "fixtures" / target, name), (here / "corpus" / target, "seed-" + name)):
        d.mkdir(parents=True, exist_ok=True)
        (d / n).write_bytes(data)

good = {"iss": ISSUER, "aud": AUDIENCE, "sub": "RSSMRA80A01H501U", "exp": NOW + 300,
        "iat": NOW - 10, "nbf": NOW - 10, "name": "Mario Rossi",
        "realm_access": {"roles": ["raccordo-analyst", "raccordo-admin"]}}
cases = {
    "es-ok": ({"alg": "ES256", "kid": "es", "typ": "at+jwt"}, good, es),
    "ed-ok": ({"alg": "EdDSA", "kid": "ed"}, good, ed),
    "rs-ok": ({"alg": "RS256", "kid": "rs"}, dict(good, aud=[AUDIENCE, "other"]), rs),
    "ps-ok": ({"alg": "PS256", "kid": "rs"}, dict(good, realm_access={"roles": "raccordo-dpo x"}), rs),
    "wrong-iss": ({"alg": "ES256", "kid": "es"}, dict(good, iss="https://evil.example"), es),
    "wrong-aud": ({"alg": "ES256", "kid": "es"}, dict(good, aud="other"), es),
    "expired": ({"alg": "ES256", "kid": "es"}, dict(good, exp=NOW - 3600), es),
    "not-yet": ({"alg": "ES256", "kid": "es"}, dict(good, nbf=NOW + 3600), es),
    "no-sub": ({"alg": "ES256", "kid": "es"}, {k: v for k, v in good.items() if k != "sub"}, es),
    "no-exp": ({"alg": "ES256", "kid": "es"}, {k: v for k, v in good.items() if k != "exp"}, es),
    "exp-string": ({"alg": "ES256", "kid": "es"}, dict(good, exp="soon"), es),
    "kid-mismatch": ({"alg": "ES256", "kid": "ed"}, good, es),
    "unknown-kid": ({"alg": "ES256", "kid": "zz"}, good, es),
}
for name, (h, c, k) in cases.items():
    write("jwt", name, jwt(h, c, k).encode())
write("jwt", "none", (jenc({"alg": "none", "kid": "es"}) + "." + jenc(good) + ".").encode())
write("jwt", "hs256", (jenc({"alg": "HS256", "kid": "es"}) + "." + jenc(good) + ".c2ln").encode())
write("jwt", "garbage", b"not.a.jwt")

# The signature target: a self-signed client certificate for the P-256 key, as x5c.
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prato.fuzz.example")])
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(es.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2025, 1, 1)).not_valid_after(datetime.datetime(2035, 1, 1))
        .sign(es, hashes.SHA256()))
der = cert.public_bytes(serialization.Encoding.DER)
(here / "fixtures" / "signer.der").write_bytes(der)
ed_cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
           .public_key(ed.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(datetime.datetime(2025, 1, 1)).not_valid_after(datetime.datetime(2035, 1, 1))
           .sign(ed, None)).public_bytes(serialization.Encoding.DER)
digest = "SHA-256=" + base64.b64encode(hashlib.sha256(BODY).digest()).decode()
x5c = [base64.b64encode(der).decode()]
sclaims = {"aud": SIG_AUDIENCE, "iat": NOW - 5, "exp": NOW + 115, "jti": "f1e2d3c4",
           "signed_headers": [{"digest": digest}, {"content-type": "application/json"}]}
# The first byte picks how the target calls verify (see gateway/src/fuzzing.rs).
scases = {
    "ok": (0, {"alg": "ES256", "typ": "JWT", "x5c": x5c}, sclaims, es),
    "no-digest-header": (1, {"alg": "ES256", "x5c": x5c}, sclaims, es),
    "ed-cert": (2, {"alg": "EdDSA", "x5c": [base64.b64encode(ed_cert).decode()]}, sclaims, ed),
    "unsigned-digest": (0, {"alg": "ES256", "x5c": x5c}, dict(sclaims, signed_headers=[]), es),
    "long-life": (0, {"alg": "ES256", "x5c": x5c}, dict(sclaims, exp=NOW + 3600), es),
    "wrong-aud": (0, {"alg": "ES256", "x5c": x5c}, dict(sclaims, aud="x"), es),
    "empty-jti": (0, {"alg": "ES256", "x5c": x5c}, dict(sclaims, jti=""), es),
    "no-x5c": (0, {"alg": "ES256"}, sclaims, es),
}
for name, (mode, h, c, k) in scases.items():
    write("signature", name, bytes([mode]) + jwt(h, c, k).encode())
write("signature", "none", b"\x00" + (jenc({"alg": "none", "x5c": x5c}) + "." + jenc(sclaims) + ".").encode())
