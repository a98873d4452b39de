#!/usr/bin/env python3
"""pyHanko (not our code) validates every signature of a PDF end to end: integrity (digest and
signature), certificate chain to ROOT (no network: allow_fetching=False), and the signature
time stamp (its own signature, chain and imprint).

usage: pyhanko_validate.py PDF ROOT.pem
Prints one JSON object per signature; exits non-zero unless every signature is intact, valid,
trusted and carries a valid, trusted time stamp.
"""
import json, sys
from asn1crypto import pem, x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext


def main():
    pdf, root_path = sys.argv[1:]
    data = open(root_path, "rb").read()
    root = x509.Certificate.load(pem.unarmor(data)[2] if pem.detect(data) else data)
    ok = True
    with open(pdf, "rb") as f:
        r = PdfFileReader(f)
        sigs = r.embedded_signatures
        if not sigs:
            ok = False
        for sig in sigs:
            vc = ValidationContext(trust_roots=[root], allow_fetching=False)
            tvc = ValidationContext(trust_roots=[root], allow_fetching=False)
            st = validate_pdf_signature(sig, vc, ts_validation_context=tvc)
            ts = st.timestamp_validity
            out = {
                "field": sig.field_name,
                "intact": st.intact,
                "valid": st.valid,
                "trusted": st.trusted,
                "coverage": str(st.coverage),
                "md_algorithm": st.md_algorithm,
                "mechanism": str(st.pkcs7_signature_mechanism),
                "signer": st.signing_cert.subject.human_friendly,
                "timestamp": None
                if ts is None
                else {
                    "intact": ts.intact,
                    "valid": ts.valid,
                    "trusted": ts.trusted,
                    "time": str(ts.timestamp),
                    "tsa": ts.signing_cert.subject.human_friendly,
                },
                "summary": st.summary(),
            }
            print(json.dumps(out))
            ok = ok and st.intact and st.valid and st.trusted and ts is not None
            ok = ok and ts.intact and ts.valid and ts.trusted
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
