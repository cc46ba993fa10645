#!/usr/bin/env python3
# Opens the pinned vector of tests/seal.rs (a_pinned_vector) without the hpke crate: RFC 9180
# base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, written out by hand
# over pyca/cryptography. Run: python3 crates/moot-aid/tests/hpke_crosscheck.py (prints the detail).
import hashlib, hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

def extract(salt, ikm): return hmac.new(salt or b"\0"*32, ikm, hashlib.sha256).digest()
def expand(prk, info, L):
    out, t, i = b"", b"", 1
    while len(out) < L:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest(); out += t; i += 1
    return out[:L]
def lextract(suite, salt, label, ikm): return extract(salt, b"HPKE-v1" + suite + label + ikm)
def lexpand(suite, prk, label, info, L): return expand(prk, L.to_bytes(2,"big") + b"HPKE-v1" + suite + label + info, L)

KEM = b"KEM" + (0x0020).to_bytes(2,"big")
HPKE = b"HPKE" + (0x0020).to_bytes(2,"big") + (0x0001).to_bytes(2,"big") + (0x0003).to_bytes(2,"big")

seed = bytes([0xb0]*32)
h = bytearray(hashlib.sha512(seed).digest()[:32])   # Ed25519 secret scalar, clamped
h[0] &= 248; h[31] &= 127; h[31] |= 64
skR = X25519PrivateKey.from_private_bytes(bytes(h))
pkRm = skR.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
# the Ed25519 public key of the seed, mapped to Montgomery u = (1+y)/(1-y)
edpk = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
p = 2**255 - 19
y = int.from_bytes(edpk, "little") & ((1<<255)-1)
u = (1 + y) * pow(1 - y, p - 2, p) % p
assert u.to_bytes(32, "little") == pkRm, "Montgomery form of the Ed25519 key != X25519 public of the scalar"

sealed = bytes.fromhex("01da8f72beb69fa6c7c99892e17376d3fb9cafba84b5761d8837a3690b87717d331b46fe4ba90ebd9d49073d8bd1a03d5dcf1da3a9f217fdb5d50e1768")
context = b"moot/aid/contact/v1" + bytes([0x11]*32) + bytes([0x22]*32)
info = b"moot/aid/seal/v1\x00" + context
enc, ct = sealed[1:33], sealed[33:]
dh = skR.exchange(X25519PublicKey.from_public_bytes(enc))
eae = lextract(KEM, b"", b"eae_prk", dh)
shared = lexpand(KEM, eae, b"shared_secret", enc + pkRm, 32)
psk_id_hash = lextract(HPKE, b"", b"psk_id_hash", b"")
info_hash = lextract(HPKE, b"", b"info_hash", info)
ks_ctx = bytes([0]) + psk_id_hash + info_hash
secret = lextract(HPKE, shared, b"secret", b"")
key = lexpand(HPKE, secret, b"key", ks_ctx, 32)
nonce = lexpand(HPKE, secret, b"base_nonce", ks_ctx, 12)
print(ChaCha20Poly1305(key).decrypt(nonce, ct, bytes([1])))
