#!/usr/bin/env python3
"""Independent reading of a GB/T 38540 SESeal and SES_Signature made by gm-pki.

The structures are declared here with asn1crypto from the standard's ASN.1 (not from our Rust
code); the seal authority's signature over DER(eSealInfo) and the signer's over DER(toSign) are
verified with `openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678`.

usage: check_seal.py SEAL.der SIG.der MAKER_PUB.pem SIGNER_PUB.pem DATAHASH_HEX
Prints one JSON object; exits non-zero on any failure.
"""
import json, os, subprocess, sys, tempfile
from asn1crypto import core, keys, pem, x509


class Header(core.Sequence):
    _fields = [("id", core.IA5String), ("version", core.Integer), ("vid", core.IA5String)]


class AnySeq(core.SequenceOf):
    _child_spec = core.Any


class Property(core.Sequence):
    _fields = [
        ("type", core.Integer), ("name", core.UTF8String), ("cert_list_type", core.Integer),
        ("cert_list", AnySeq), ("create_date", core.GeneralizedTime),
        ("valid_start", core.GeneralizedTime), ("valid_end", core.GeneralizedTime),
    ]


class Picture(core.Sequence):
    _fields = [("type", core.IA5String), ("data", core.OctetString),
               ("width", core.Integer), ("height", core.Integer)]


class ExtData(core.Sequence):
    _fields = [("id", core.ObjectIdentifier), ("critical", core.Boolean, {"default": False}),
               ("value", core.OctetString)]


class ExtDatas(core.SequenceOf):
    _child_spec = ExtData


class SealInfo(core.Sequence):
    _fields = [("header", Header), ("es_id", core.IA5String), ("property", Property),
               ("picture", Picture), ("ext_datas", ExtDatas, {"optional": True})]


class SESeal(core.Sequence):
    _fields = [("info", SealInfo), ("cert", core.OctetString), ("alg", core.ObjectIdentifier),
               ("signed_value", core.OctetBitString)]


class TbsSign(core.Sequence):
    _fields = [("version", core.Integer), ("eseal", SESeal), ("time_info", core.GeneralizedTime),
               ("data_hash", core.OctetBitString), ("property_info", core.IA5String),
               ("ext_datas", ExtDatas, {"explicit": 0, "optional": True})]


class SESSignature(core.Sequence):
    _fields = [("to_sign", TbsSign), ("cert", core.OctetString), ("alg", core.ObjectIdentifier),
               ("signature", core.OctetBitString),
               ("time_stamp", core.OctetBitString, {"explicit": 0, "optional": True})]


def verify(pub, msg, sig):
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "m"), "wb").write(msg)
        open(os.path.join(d, "s"), "wb").write(sig)
        out = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin",
                              "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
                              "-in", os.path.join(d, "m"), "-sigfile", os.path.join(d, "s")],
                             capture_output=True, text=True)
        if out.returncode != 0 or "Signature Verified Successfully" not in out.stdout:
            raise SystemExit("openssl pkeyutl: " + out.stdout + out.stderr)


def same_key(cert_der, pub_pem):
    want = keys.PublicKeyInfo.load(pem.unarmor(open(pub_pem, "rb").read())[2])
    got = x509.Certificate.load(cert_der).public_key
    if got.dump() != want.dump():
        raise SystemExit("certificate key differs from " + pub_pem)


def main():
    seal_path, sig_path, maker_pub, signer_pub, hash_hex = sys.argv[1:6]
    seal = SESeal.load(open(seal_path, "rb").read(), strict=True)
    info = seal["info"]
    if info["header"]["id"].native != "ES" or info["header"]["version"].native != 4:
        raise SystemExit("header")
    if seal["alg"].dotted != "1.2.156.10197.1.501":
        raise SystemExit("seal algorithm " + seal["alg"].dotted)
    same_key(seal["cert"].native, maker_pub)
    verify(maker_pub, info.dump(), seal["signed_value"].native)
    sig = SESSignature.load(open(sig_path, "rb").read(), strict=True)
    tbs = sig["to_sign"]
    if tbs["version"].native != 4 or tbs["eseal"].dump() != seal.dump():
        raise SystemExit("TBS_Sign version or seal")
    same_key(sig["cert"].native, signer_pub)
    verify(signer_pub, tbs.dump(), sig["signature"].native)
    if tbs["data_hash"].native.hex() != hash_hex:
        raise SystemExit("dataHash")
    print(json.dumps({
        "ok": True,
        "name": info["property"]["name"].native,
        "es_id": info["es_id"].native,
        "valid_end": str(info["property"]["valid_end"].native),
        "property_info": tbs["property_info"].native,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
