#!/usr/bin/env python3
"""Make a CMS SignedData with another implementation: asn1crypto builds the structure and
`openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt distid:1234567812345678` signs the DER SET OF
signed attributes. Used to check that gm-pki verifies CMS it did not produce.

usage: make_cms.py --cert CERT.pem --key KEY.pem --data FILE --out OUT.der [--detached] [--gm]
  --gm: GB/T 35275 OIDs (signedData 1.2.156.10197.6.1.4.2.2, data .2.1) and SM3withSM2 as signatureAlgorithm.
"""
import argparse, subprocess, tempfile, os, hashlib, datetime
from asn1crypto import cms, x509, pem, core, algos


def sm3(data):
    try:
        return hashlib.new("sm3", data).digest()
    except ValueError:
        return subprocess.run(["openssl", "dgst", "-sm3", "-binary"], input=data, capture_output=True, check=True).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--detached", action="store_true")
    ap.add_argument("--gm", action="store_true")
    a = ap.parse_args()
    der = open(a.cert, "rb").read()
    if pem.detect(der):
        _, _, der = pem.unarmor(der)
    cert = x509.Certificate.load(der)
    data = open(a.data, "rb").read()
    data_oid = "1.2.156.10197.6.1.4.2.1" if a.gm else "data"
    signed_oid = "1.2.156.10197.6.1.4.2.2" if a.gm else "signed_data"
    when = datetime.datetime(2026, 5, 1, 8, 30, 0, tzinfo=datetime.timezone.utc)
    attrs = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": [data_oid]}),
        cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": when})]}),
        cms.CMSAttribute({"type": "message_digest", "values": [sm3(data)]}),
    ])
    to_sign = attrs.dump()
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "tbs"), "wb").write(to_sign)
        subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", a.key, "-rawin", "-digest", "sm3",
                        "-pkeyopt", "distid:1234567812345678", "-in", os.path.join(d, "tbs"),
                        "-out", os.path.join(d, "sig")], check=True)
        sig = open(os.path.join(d, "sig"), "rb").read()
    sm3_alg = algos.DigestAlgorithm({"algorithm": "1.2.156.10197.1.401"})
    si = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
            "issuer": cert.issuer, "serial_number": cert.serial_number})}),
        "digest_algorithm": sm3_alg,
        "signed_attrs": attrs,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "1.2.156.10197.1.501" if a.gm else "1.2.156.10197.1.301.1"}),
        "signature": sig,
    })
    if a.gm:  # asn1crypto has no spec for the GB/T 35275 content types: assemble by hand
        eci = core.ObjectIdentifier(data_oid).dump()
        if not a.detached:
            eci += tlv(0xA0, core.OctetString(data).dump())
        sd = (core.Integer(1).dump() + tlv(0x31, sm3_alg.dump()) + tlv(0x30, eci)
              + tlv(0xA0, cert.dump()) + tlv(0x31, si.dump()))
        body = core.ObjectIdentifier(signed_oid).dump() + tlv(0xA0, tlv(0x30, sd))
        out = tlv(0x30, body)
    else:
        eci = {"content_type": data_oid}
        if not a.detached:
            eci["content"] = data
        sd = cms.SignedData({
            "version": "v1",
            "digest_algorithms": [sm3_alg],
            "encap_content_info": eci,
            "certificates": [cert],
            "signer_infos": [si],
        })
        out = cms.ContentInfo({"content_type": signed_oid, "content": sd}).dump()
    open(a.out, "wb").write(out)


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + length + content


if __name__ == "__main__":
    main()
