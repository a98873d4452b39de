#!/usr/bin/env python3
"""Sign a PDF with pyHanko (a producer we did not write), for testing our verifier on foreign
signatures.

usage: pyhanko_sign.py IN.pdf OUT.pdf KEY.pem CERT.pem [CHAIN.pem ...]
The key type (ECDSA P-256, RSA) comes from KEY.pem; the digest is SHA-256. Prints nothing on
success; exits non-zero on failure.
"""
import sys
from pyhanko.sign import signers
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter


def main():
    src, dst, key, cert, *chain = sys.argv[1:]
    signer = signers.SimpleSigner.load(key, cert, ca_chain_files=chain or None)
    if signer is None:
        sys.exit("pyHanko could not load the key/certificate")
    with open(src, "rb") as f:
        w = IncrementalPdfFileWriter(f)
        meta = signers.PdfSignatureMetadata(field_name="Foreign", md_algorithm="sha256")
        with open(dst, "wb") as out:
            signers.sign_pdf(w, meta, signer=signer, output=out)


if __name__ == "__main__":
    main()
