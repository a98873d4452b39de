#!/usr/bin/env python3
"""Anchor for the doc-sign throughput benchmark: pyHanko signs the same PDF the same way.

Each signature: incremental update with a new visible signature field (the same box, the same
seal picture as the stamp background, a text stamp with signer and time), PAdES
(/ETSI.CAdES.detached) CMS, ECDSA P-256 / SHA-256 (pyHanko cannot do SM2), and a signature time
stamp from pyHanko's in-process TSA (DummyTimeStamper, like doc-sign's LocalTsa; it is
RSA-only, so the TSA key is RSA-2048), i.e. PAdES B-T. 16 KiB are reserved for the CMS, as
doc-sign does (so pyHanko skips its size-estimating dry run). Keys and certificates (CA → signer, CA → TSA) are made with `cryptography` at start-up,
outside the timed loop. Single-threaded, like the criterion benchmark.

usage: pyhanko_sign_bench.py PDF SEAL.pdf [--seconds S] [--min-count N] [--out signed.pdf]
SEAL.pdf is the seal PNG as a one-page PDF (doc-sign's image_pdf, written by the criterion
bench): pyHanko's PNG support needs Pillow, which the test venv does not have, so the picture
is imported as a page (the same image XObject, with its alpha SMask).
Prints one JSON line: count, seconds, signatures_per_second, bytes.
"""
import argparse, datetime, io, json, time

from asn1crypto import keys as akeys, x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils.content import ImportedPdfPage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers, timestamps
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore


def make_cert(subject, issuer_name, issuer_key, key, ca=False, eku=None, days=3650):
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=True)
    c = b.sign(issuer_key, hashes.SHA256())
    return ax509.Certificate.load(c.public_bytes(serialization.Encoding.DER))


def key_info(key):
    return akeys.PrivateKeyInfo.load(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pdf")
    ap.add_argument("seal")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--min-count", type=int, default=20)
    ap.add_argument("--out")
    a = ap.parse_args()
    src = open(a.pdf, "rb").read()

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_cert("Bench CA", "Bench CA", ca_key, ca_key, ca=True)
    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer_cert = make_cert("张三 Bench Signer", "Bench CA", ca_key, signer_key)
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa_cert = make_cert("Bench TSA", "Bench CA", ca_key, tsa_key, eku=[ExtendedKeyUsageOID.TIME_STAMPING])

    signer = signers.SimpleSigner(
        signing_cert=signer_cert, signing_key=key_info(signer_key),
        cert_registry=SimpleCertificateStore.from_certs([ca]))
    tsa = timestamps.DummyTimeStamper(
        tsa_cert=tsa_cert, tsa_key=key_info(tsa_key),
        certs_to_embed=SimpleCertificateStore.from_certs([ca]))
    stamp = TextStampStyle(
        stamp_text="签名人：%(signer)s\n时间：%(ts)s",
        background=ImportedPdfPage(a.seal),
    )
    meta = signers.PdfSignatureMetadata(
        field_name="Signature1", subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256", reason="出院记录审核")
    spec = fields.SigFieldSpec(sig_field_name="Signature1", on_page=9, box=(330, 60, 530, 170))

    def sign_once():
        w = IncrementalPdfFileWriter(io.BytesIO(src), strict=False)
        out = io.BytesIO()
        signers.PdfSigner(meta, signer=signer, timestamper=tsa, stamp_style=stamp,
                          new_field_spec=spec).sign_pdf(w, output=out, bytes_reserved=16384)
        return out.getvalue()

    first = sign_once()  # warm-up (imports, caches), not timed
    if a.out:
        open(a.out, "wb").write(first)
    count, t0 = 0, time.perf_counter()
    while True:
        sign_once()
        count += 1
        el = time.perf_counter() - t0
        if el >= a.seconds and count >= a.min_count:
            break
    print(json.dumps({"tool": "pyHanko", "count": count, "seconds": round(el, 3),
                      "signatures_per_second": round(count / el, 2), "bytes": len(first)}))


if __name__ == "__main__":
    main()
