#!/usr/bin/env python3
"""Independent check of a CRL made by gm-pki: parse with asn1crypto, verify the SM2 signature over
tbsCertList with `openssl pkeyutl` (distid 1234567812345678). OpenSSL 3.0's `openssl crl -verify`
has no way to pass the SM2 distinguishing ID.

usage: check_crl.py CRL.der ISSUER_PUB.pem
"""
import json, os, subprocess, sys, tempfile
from asn1crypto import crl


def main():
    c = crl.CertificateList.load(open(sys.argv[1], "rb").read())
    tbs = c["tbs_cert_list"]
    out = {
        "version": tbs["version"].native,
        "crl_number": c.crl_number_value.native if c.crl_number_value is not None else None,
        "revoked": [{"serial": format(r["user_certificate"].native, "x"),
                     "reason": r.crl_reason_value.native if r.crl_reason_value is not None else None}
                    for r in tbs["revoked_certificates"]],
        "signature_alg": c["signature_algorithm"]["algorithm"].dotted,
    }
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "tbs"), "wb").write(tbs.dump())
        open(os.path.join(d, "sig"), "wb").write(c["signature"].native)
        p = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", sys.argv[2], "-rawin", "-digest", "sm3",
                            "-pkeyopt", "distid:1234567812345678", "-in", os.path.join(d, "tbs"), "-sigfile", os.path.join(d, "sig")],
                           capture_output=True, text=True)
    out["signature_ok"] = p.returncode == 0 and "Signature Verified Successfully" in p.stdout
    print(json.dumps(out))
    sys.exit(0 if out["signature_ok"] else 1)


if __name__ == "__main__":
    main()
