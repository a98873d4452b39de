#!/usr/bin/env python3
"""Independent check of a PDF signed by doc-sign.

pyHanko (not our code) reads the file, finds every embedded signature and judges its /ByteRange
coverage; the CMS is parsed with asn1crypto, messageDigest recomputed as SM3 over the byte
ranges, and the SM2 signature over the re-encoded signedAttrs verified with
`openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678` (pyHanko cannot do
SM2 maths). The signer's public key is taken from the certificate in the CMS and must equal --pub.

usage: check_pdf.py PDF --pub PUB.pem [--pub PUB2.pem ...]   (one --pub per signature, in order)
Prints one JSON object; exits non-zero on any failure.
"""
import argparse, hashlib, json, os, subprocess, sys, tempfile
from asn1crypto import cms, keys, pem
from pyhanko.pdf_utils.reader import PdfFileReader

DISTID = "distid:1234567812345678"


def sm3(data):
    try:
        return hashlib.new("sm3", data).digest()
    except ValueError:
        return subprocess.run(["openssl", "dgst", "-sm3", "-binary"], input=data, capture_output=True, check=True).stdout


def fail(msg, report):
    report["ok"] = False
    report["error"] = msg
    print(json.dumps(report, default=str))
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pdf")
    ap.add_argument("--pub", action="append", default=[])
    a = ap.parse_args()
    data = open(a.pdf, "rb").read()
    report = {"signatures": []}
    with open(a.pdf, "rb") as f:
        r = PdfFileReader(f, strict=False)
        sigs = r.embedded_signatures
        if len(sigs) != len(a.pub):
            fail("pyHanko found %d signatures, expected %d" % (len(sigs), len(a.pub)), report)
        for emb, pub in zip(sigs, a.pub):
            s = {"field": emb.field_name}
            s["sub_filter"] = str(emb.sig_object.get("/SubFilter"))
            s["filter"] = str(emb.sig_object.get("/Filter"))
            br = list(emb.sig_object["/ByteRange"])
            s["byte_range"] = br
            cov = emb.evaluate_signature_coverage()
            s["coverage"] = cov.name
            s["signed_revision"] = emb.signed_revision
            report["signatures"].append(s)
            if cov.name not in ("ENTIRE_FILE", "ENTIRE_REVISION"):
                fail("pyHanko coverage %s" % cov.name, report)
            signed = data[br[0]:br[0] + br[1]] + data[br[2]:br[2] + br[3]]
            sd = emb.signed_data
            si = sd["signer_infos"][0]
            md = None
            for at in si["signed_attrs"]:
                if at["type"].dotted == "1.2.840.113549.1.9.4":
                    md = at["values"][0].native
                s.setdefault("signed_attrs", []).append(at["type"].dotted)
            if md != sm3(signed):
                fail("messageDigest is not SM3 of the byte ranges", report)
            s["digest_ok"] = True
            if si["unsigned_attrs"].native:
                s["unsigned_attrs"] = [at["type"].dotted for at in si["unsigned_attrs"]]
            # The signer certificate's key must be the expected one.
            want = pem.unarmor(open(pub, "rb").read())[2]
            certs = [c.chosen for c in sd["certificates"]]
            sid = si["sid"].chosen
            cert = next(c for c in certs if c.issuer == sid["issuer"] and c.serial_number == sid["serial_number"].native)
            if cert.public_key.dump() != keys.PublicKeyInfo.load(want).dump():
                fail("signer certificate key differs from --pub", report)
            raw = b"\x31" + si["signed_attrs"].dump()[1:]
            with tempfile.TemporaryDirectory() as d:
                open(os.path.join(d, "a.der"), "wb").write(raw)
                open(os.path.join(d, "s.der"), "wb").write(si["signature"].native)
                out = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3",
                                      "-pkeyopt", DISTID, "-in", os.path.join(d, "a.der"), "-sigfile", os.path.join(d, "s.der")],
                                     capture_output=True, text=True)
                if out.returncode != 0 or "Signature Verified Successfully" not in out.stdout:
                    fail("openssl pkeyutl: " + out.stdout + out.stderr, report)
            s["signature_ok"] = True
    report["ok"] = True
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
