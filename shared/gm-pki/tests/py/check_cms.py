#!/usr/bin/env python3
"""Independent check of a CMS SignedData / RFC 3161 token made by gm-pki.

Parses with asn1crypto (not our code), recomputes messageDigest (and the TSP messageImprint),
re-encodes signedAttrs as a SET OF and verifies the SM2 signature with
`openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678`.

usage: check_cms.py (--tsr FILE | --cms FILE) --pub PUB.pem [--data FILE] [--imprint-of FILE]
Prints one JSON object; exits non-zero on any failure.
"""
import argparse, json, subprocess, sys, tempfile, os, hashlib
from asn1crypto import cms, tsp, core

DISTID = "distid:1234567812345678"


def sm3(data):
    try:
        return hashlib.new("sm3", data).digest()
    except ValueError:
        out = subprocess.run(["openssl", "dgst", "-sm3", "-binary"], input=data, capture_output=True, check=True)
        return out.stdout


def digest(alg_oid, data):
    if alg_oid in ("1.2.156.10197.1.401", "sm3"):
        return sm3(data)
    if alg_oid in ("2.16.840.1.101.3.4.2.1", "sha256"):
        return hashlib.sha256(data).digest()
    raise SystemExit("unexpected digest algorithm %s" % alg_oid)


def fail(msg):
    print(json.dumps({"ok": False, "error": msg}))
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tsr")
    ap.add_argument("--cms")
    ap.add_argument("--pub", required=True)
    ap.add_argument("--data")
    ap.add_argument("--imprint-of")
    a = ap.parse_args()
    report = {}
    if a.tsr:
        resp = tsp.TimeStampResp.load(open(a.tsr, "rb").read())
        status = resp["status"]["status"].native
        report["status"] = status
        if status not in ("granted", "granted_with_mods"):
            fail("not granted: %r" % (status,))
        ci = resp["time_stamp_token"]
    else:
        ci = cms.ContentInfo.load(open(a.cms, "rb").read())
    ctype = ci["content_type"].dotted
    report["content_type"] = ctype
    if ctype not in ("1.2.840.113549.1.7.2", "1.2.156.10197.6.1.4.2.2"):
        fail("not signedData: " + ctype)
    sd = ci["content"]
    if not isinstance(sd, cms.SignedData):  # GB/T 35275 OID: asn1crypto leaves it as Any
        sd = sd.parse(cms.SignedData)
    eci = sd["encap_content_info"]
    report["econtent_type"] = eci["content_type"].dotted
    content = eci["content"]
    if isinstance(content, core.Void):
        if not a.data:
            fail("detached content but no --data")
        content_bytes = open(a.data, "rb").read()
    elif isinstance(content, core.Any):  # unknown eContentType (GB/T 35275 data)
        content_bytes = content.parse(core.OctetString).native
    else:
        content_bytes = content.contents  # the OCTET STRING's value
    if a.tsr or report["econtent_type"] == "1.2.840.113549.1.9.16.1.4":
        tst = tsp.TSTInfo.load(content_bytes)
        mi = tst["message_imprint"]
        report["imprint_alg"] = mi["hash_algorithm"]["algorithm"].dotted
        report["imprint"] = mi["hashed_message"].native.hex()
        report["gen_time"] = tst["gen_time"].native.isoformat()
        report["serial"] = tst["serial_number"].native
        report["policy"] = tst["policy"].dotted
        report["nonce"] = tst["nonce"].native
        acc = tst["accuracy"]
        report["accuracy_seconds"] = acc["seconds"].native if acc.native else None
        if a.imprint_of:
            want = digest(report["imprint_alg"], open(a.imprint_of, "rb").read())
            if want != mi["hashed_message"].native:
                fail("messageImprint does not match the data")
            report["imprint_ok"] = True
    report["certificates"] = len(sd["certificates"]) if sd["certificates"].native else 0
    sis = sd["signer_infos"]
    if len(sis) != 1:
        fail("expected one SignerInfo")
    si = sis[0]
    dalg = si["digest_algorithm"]["algorithm"].dotted
    report["digest_alg"] = dalg
    report["signature_alg"] = si["signature_algorithm"]["algorithm"].dotted
    attrs = si["signed_attrs"]
    md = None
    names = []
    for at in attrs:
        t = at["type"].dotted
        names.append(t)
        if t == "1.2.840.113549.1.9.4":
            md = at["values"][0].native
        if t == "1.2.840.113549.1.9.3":
            report["attr_content_type"] = at["values"][0].dotted
        if t == "1.2.840.113549.1.9.16.2.47":
            report["signing_certificate_v2"] = True
    report["signed_attrs"] = names
    if md != digest(dalg, content_bytes):
        fail("messageDigest does not match the content")
    report["message_digest_ok"] = True
    if si["unsigned_attrs"].native:
        report["unsigned_attrs"] = [at["type"].dotted for at in si["unsigned_attrs"]]
    raw = attrs.dump()
    raw = b"\x31" + raw[1:]  # [0] IMPLICIT -> SET OF (RFC 5652 section 5.4)
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "attrs.der"), "wb").write(raw)
        open(os.path.join(d, "sig.der"), "wb").write(si["signature"].native)
        out = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", a.pub, "-rawin", "-digest", "sm3",
                              "-pkeyopt", DISTID, "-in", os.path.join(d, "attrs.der"), "-sigfile", os.path.join(d, "sig.der")],
                             capture_output=True, text=True)
        if out.returncode != 0 or "Signature Verified Successfully" not in out.stdout:
            fail("openssl pkeyutl: " + out.stdout + out.stderr)
    report["signature_ok"] = True
    report["ok"] = True
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
