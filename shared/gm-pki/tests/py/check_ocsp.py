#!/usr/bin/env python3
"""Independent check of an OCSP response made by gm-pki: parse with asn1crypto, verify the SM2
signature over tbsResponseData with `openssl pkeyutl` (distid 1234567812345678), print statuses.

usage: check_ocsp.py RESP.der RESPONDER_PUB.pem
"""
import json, os, subprocess, sys, tempfile
from asn1crypto import ocsp


def main():
    resp = ocsp.OCSPResponse.load(open(sys.argv[1], "rb").read())
    out = {"response_status": resp["response_status"].native}
    basic = resp["response_bytes"]["response"].parsed
    tbs = basic["tbs_response_data"]
    out["statuses"] = []
    for r in tbs["responses"]:
        st = r["cert_status"]
        item = {"serial": format(r["cert_id"]["serial_number"].native, "x"), "status": st.name}
        if st.name == "revoked":
            item["reason"] = st.chosen["revocation_reason"].native
        out["statuses"].append(item)
    exts = tbs["response_extensions"]
    out["nonce"] = None
    if exts.native:
        for e in exts:
            if e["extn_id"].dotted == "1.3.6.1.5.5.7.48.1.2":
                out["nonce"] = e["extn_value"].contents.hex()
    out["signature_alg"] = basic["signature_algorithm"]["algorithm"].dotted
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "tbs"), "wb").write(tbs.dump())
        open(os.path.join(d, "sig"), "wb").write(basic["signature"].native)
        p = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", sys.argv[2], "-rawin", "-digest", "sm3",
                            "-pkeyopt", "distid:1234567812345678", "-in", os.path.join(d, "tbs"), "-sigfile", os.path.join(d, "sig")],
                           capture_output=True, text=True)
    out["signature_ok"] = p.returncode == 0 and "Signature Verified Successfully" in p.stdout
    print(json.dumps(out))
    sys.exit(0 if out["signature_ok"] else 1)


if __name__ == "__main__":
    main()
