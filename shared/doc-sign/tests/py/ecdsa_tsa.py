#!/usr/bin/env python3
"""A test RFC 3161 TSA with an ECDSA P-256 key, built on pyHanko's DummyTimeStamper (which is
RSA-only and uses the SHA-1 signingCertificate): this subclass signs with ecdsa-with-SHA256
and writes signingCertificateV2. It answers one request for a SHA-256 imprint.

usage: ecdsa_tsa.py TSA_KEY.pem TSA_CERT.pem IMPRINT_HEX
Prints the DER time-stamp token (ContentInfo) in hex.
"""
import sys
from datetime import datetime, timezone
from asn1crypto import algos, cms, keys, pem, tsp, x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.sign.general import as_signing_certificate_v2, simple_cms_attribute
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper


def der(path):
    data = open(path, "rb").read()
    return pem.unarmor(data)[2] if pem.detect(data) else data


class EcdsaTimeStamper(DummyTimeStamper):
    def _sign_tst_info(self, tst_info_data, md_algorithm, dt):
        h = hashes.Hash(hashes.SHA256())
        h.update(tst_info_data)
        attrs = cms.CMSAttributes(
            [
                simple_cms_attribute("content_type", "tst_info"),
                simple_cms_attribute("signing_time", cms.Time({"utc_time": dt})),
                simple_cms_attribute(
                    "signing_certificate_v2", as_signing_certificate_v2(self.tsa_cert)
                ),
                simple_cms_attribute("message_digest", h.finalize()),
            ]
        )
        key = serialization.load_der_private_key(self.tsa_key.dump(), password=None)
        return key.sign(attrs.dump(), ec.ECDSA(hashes.SHA256())), attrs

    def _build_signed_data(self, tst_info_data, md_algorithm, signature, signed_attrs):
        sd = super()._build_signed_data(tst_info_data, md_algorithm, signature, signed_attrs)
        sd["signer_infos"][0]["signature_algorithm"] = algos.SignedDigestAlgorithm(
            {"algorithm": "sha256_ecdsa"}
        )
        return sd


def main():
    key_path, cert_path, imprint_hex = sys.argv[1:]
    tsa = EcdsaTimeStamper(
        tsa_cert=x509.Certificate.load(der(cert_path)),
        tsa_key=keys.PrivateKeyInfo.load(der(key_path)),
        # whole seconds: DER GeneralizedTime without fractions
        fixed_dt=datetime.now(tz=timezone.utc).replace(microsecond=0),
    )
    req = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": tsp.MessageImprint(
                {
                    "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                    "hashed_message": bytes.fromhex(imprint_hex),
                }
            ),
            "cert_req": True,
        }
    )
    resp = tsa.request_tsa_response(req)
    if resp["status"]["status"].native != "granted":
        sys.exit("TSA refused: %r" % resp["status"].native)
    print(resp["time_stamp_token"].dump().hex())


if __name__ == "__main__":
    main()
