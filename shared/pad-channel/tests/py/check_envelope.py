#!/usr/bin/env python3
"""Opens a pad-channel request and its answer with code we did not write.

Usage: check_envelope.py DIR, where DIR holds channel.hex (the server's SM2 channel private
key), pad.pem (the pad's public key), request.bin, response.bin and inner.bin (the inner
request the pad sealed) and answer.bin (the inner answer).

Parses the envelope from the format in shared/pad-channel/src/lib.rs (its own parser), unwraps
the SM4 key with Python gmssl's SM2 decryption (C1C3C2; C3 checked here, gmssl does not),
opens both bodies with the `cryptography` package's SM4-GCM (OpenSSL), and verifies the pad's
SM2 signature with the OpenSSL CLI (SM3, default ID). Prints "ok" or exits non-zero.
"""
import os
import struct
import subprocess
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl import sm2, sm3


def fail(msg):
    print(f"check_envelope: {msg}", file=sys.stderr)
    sys.exit(1)


def take(buf, pos, n):
    if pos + n > len(buf):
        fail("short envelope")
    return buf[pos:pos + n], pos + n


def u16(buf, pos):
    b, pos = take(buf, pos, 2)
    return take(buf, pos, struct.unpack(">H", b)[0])


def u32(buf, pos):
    b, pos = take(buf, pos, 4)
    return take(buf, pos, struct.unpack(">I", b)[0])


def gcm_open(key, iv, aad, ct):
    tag, body = ct[-16:], ct[:-16]
    d = Cipher(algorithms.SM4(key), modes.GCM(iv, tag)).decryptor()
    d.authenticate_additional_data(aad)
    return d.update(body) + d.finalize()


def main():
    d = sys.argv[1]
    rd = lambda n: open(os.path.join(d, n), "rb").read()
    req, resp = rd("request.bin"), rd("response.bin")
    channel = open(os.path.join(d, "channel.hex")).read().strip()

    magic, pos = take(req, 0, 5)
    if magic != b"YQP1\x01":
        fail(f"request magic {magic!r}")
    serial, pos = u16(req, pos)
    _time, pos = take(req, pos, 8)
    nonce, pos = take(req, pos, 16)
    wrapped, pos = u16(req, pos)
    header = req[:pos]
    iv, pos = take(req, pos, 12)
    ct, pos = u32(req, pos)
    signed = req[:pos]
    sig, pos = u16(req, pos)
    if pos != len(req):
        fail("trailing bytes")
    if not serial.decode().isalnum():
        fail("serial")

    # SM2 decryption (GB/T 32918.4) of the SM4 key; C1 is 04 || x || y.
    if wrapped[0] != 4 or len(wrapped) != 1 + 64 + 32 + 16:
        fail(f"wrapped key of {len(wrapped)} bytes")
    c = sm2.CryptSM2(private_key=channel, public_key="04" + "00" * 64, mode=1)
    key = c.decrypt(wrapped[1:])
    x1y1 = wrapped[1:65].hex()
    x2y2 = c._kg(int(channel, 16), x1y1)
    c3 = sm3.sm3_hash(list(bytes.fromhex(x2y2[:64]) + key + bytes.fromhex(x2y2[64:])))
    if bytes.fromhex(c3) != wrapped[65:97]:
        fail("C3 does not match: the SM4 key did not unwrap")
    if len(key) != 16:
        fail("SM4 key length")

    inner = gcm_open(key, iv, header, ct)
    if inner != rd("inner.bin"):
        fail("the request body is not what the pad sealed")

    sig_path = os.path.join(d, "sig.der")
    msg_path = os.path.join(d, "signed.bin")
    open(sig_path, "wb").write(sig)
    open(msg_path, "wb").write(signed)
    out = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", os.path.join(d, "pad.pem"),
                          "-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
                          "-in", msg_path, "-sigfile", sig_path], capture_output=True, text=True)
    if "Signature Verified Successfully" not in out.stdout:
        fail(f"openssl: {out.stdout} {out.stderr}")

    if resp[:5] != b"YQP1\x02":
        fail("response magic")
    rnonce, pos = take(resp, 5, 16)
    if rnonce != nonce:
        fail("response answers another nonce")
    riv, pos = take(resp, pos, 12)
    rct, pos = u32(resp, pos)
    if pos != len(resp):
        fail("response trailing bytes")
    answer = gcm_open(key, riv, resp[:21], rct)
    if answer != rd("answer.bin"):
        fail("the answer body is not what the server sealed")
    print("ok")


if __name__ == "__main__":
    main()
