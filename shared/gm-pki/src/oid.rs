//! Object identifiers used by the ShangMi PKI (GM/T 0006, GB/T 35275, GM/T 0015) and PKIX.

use const_oid::ObjectIdentifier as Oid;

/// SM2 elliptic curve / public key algorithm (GM/T 0006).
pub const SM2: Oid = Oid::new_unwrap("1.2.156.10197.1.301");
/// SM2 digital signature (sm2-1), used as CMS signatureAlgorithm (GB/T 35275).
pub const SM2_SIGN: Oid = Oid::new_unwrap("1.2.156.10197.1.301.1");
/// SM2 public key encryption (sm2-3).
pub const SM2_ENCRYPT: Oid = Oid::new_unwrap("1.2.156.10197.1.301.3");
/// SM3 hash.
pub const SM3: Oid = Oid::new_unwrap("1.2.156.10197.1.401");
/// SM3withSM2 signature (certificates, CRLs, CSRs, OCSP).
pub const SM3_WITH_SM2: Oid = Oid::new_unwrap("1.2.156.10197.1.501");
/// SM4 block cipher.
pub const SM4: Oid = Oid::new_unwrap("1.2.156.10197.1.104");
/// id-ecPublicKey (RFC 5480): the SPKI algorithm, with the SM2 curve as parameter.
pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
/// SHA-1 (OCSP CertID only).
pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
/// SHA-256.
pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");

/// GB/T 35275 data.
pub const GM_DATA: Oid = Oid::new_unwrap("1.2.156.10197.6.1.4.2.1");
/// GB/T 35275 signedData.
pub const GM_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.156.10197.6.1.4.2.2");
/// RFC 5652 id-data.
pub const CMS_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
/// RFC 5652 id-signedData.
pub const CMS_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
/// id-ct-TSTInfo (RFC 3161).
pub const CT_TST_INFO: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// id-contentType signed attribute.
pub const ATTR_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
/// id-messageDigest signed attribute.
pub const ATTR_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
/// id-signingTime signed attribute.
pub const ATTR_SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");
/// id-aa-signingCertificateV2 (RFC 5035).
pub const ATTR_SIGNING_CERTIFICATE_V2: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.47");
/// id-aa-signatureTimeStampToken (RFC 3161 appendix A, CAdES-T).
pub const ATTR_SIGNATURE_TIMESTAMP: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.2.14");

/// id-kp-serverAuth.
pub const KP_SERVER_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.1");
/// id-kp-clientAuth.
pub const KP_CLIENT_AUTH: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.2");
/// id-kp-emailProtection.
pub const KP_EMAIL_PROTECTION: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.4");
/// id-kp-timeStamping.
pub const KP_TIME_STAMPING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.8");
/// id-kp-OCSPSigning.
pub const KP_OCSP_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.9");

/// id-pkix-ocsp-basic.
pub const OCSP_BASIC: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-pkix-ocsp-nonce.
pub const OCSP_NONCE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-pkix-ocsp-nocheck.
pub const OCSP_NOCHECK: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.5");
/// id-ad-ocsp.
pub const AD_OCSP: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1");
/// id-ad-caIssuers.
pub const AD_CA_ISSUERS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.2");

/// Extension OIDs (RFC 5280).
pub const EXT_SUBJECT_KEY_ID: Oid = Oid::new_unwrap("2.5.29.14");
/// keyUsage.
pub const EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
/// basicConstraints.
pub const EXT_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
/// cRLNumber.
pub const EXT_CRL_NUMBER: Oid = Oid::new_unwrap("2.5.29.20");
/// reasonCode (CRL entry).
pub const EXT_CRL_REASON: Oid = Oid::new_unwrap("2.5.29.21");
/// cRLDistributionPoints.
pub const EXT_CRL_DISTRIBUTION_POINTS: Oid = Oid::new_unwrap("2.5.29.31");
/// certificatePolicies.
pub const EXT_CERTIFICATE_POLICIES: Oid = Oid::new_unwrap("2.5.29.32");
/// authorityKeyIdentifier.
pub const EXT_AUTHORITY_KEY_ID: Oid = Oid::new_unwrap("2.5.29.35");
/// extKeyUsage.
pub const EXT_EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");
/// authorityInfoAccess.
pub const EXT_AUTHORITY_INFO_ACCESS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.1");
/// subjectAltName.
pub const EXT_SUBJECT_ALT_NAME: Oid = Oid::new_unwrap("2.5.29.17");

/// PKCS#9 extensionRequest (CSR attribute).
pub const PKCS9_EXTENSION_REQUEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.14");

/// GM/T 0015 individual identity code: resident ID number (身份证号).
pub const GM_RESIDENT_ID: Oid = Oid::new_unwrap("1.2.156.10260.4.1.1");
/// Certificate policy of one-event patient certificates (project arc 1.2.156.112233, like the
/// default TSA policy 1.2.156.112233.2.1): a relying party can tell an event certificate
/// (key generated for one signing and destroyed after it) from any other.
pub const PATIENT_EVENT_POLICY: Oid = Oid::new_unwrap("1.2.156.112233.3.1");
/// GM/T 0015 social insurance number.
pub const GM_SOCIAL_INSURANCE_NO: Oid = Oid::new_unwrap("1.2.156.10260.4.1.2");
/// GM/T 0015 business registration number.
pub const GM_BUSINESS_REGISTRATION_NO: Oid = Oid::new_unwrap("1.2.156.10260.4.1.3");
/// GM/T 0015 organisation code (we carry the unified social credit code here).
pub const GM_ORGANIZATION_CODE: Oid = Oid::new_unwrap("1.2.156.10260.4.1.4");
/// GM/T 0015 tax number.
pub const GM_TAX_NO: Oid = Oid::new_unwrap("1.2.156.10260.4.1.5");

/// X.520 attribute types used in subjects.
pub const AT_COUNTRY: Oid = Oid::new_unwrap("2.5.4.6");
/// organizationName.
pub const AT_ORGANIZATION: Oid = Oid::new_unwrap("2.5.4.10");
/// organizationalUnitName.
pub const AT_ORGANIZATIONAL_UNIT: Oid = Oid::new_unwrap("2.5.4.11");
/// commonName.
pub const AT_COMMON_NAME: Oid = Oid::new_unwrap("2.5.4.3");
/// localityName.
pub const AT_LOCALITY: Oid = Oid::new_unwrap("2.5.4.7");
/// stateOrProvinceName.
pub const AT_STATE: Oid = Oid::new_unwrap("2.5.4.8");
/// serialNumber (X.520): carries the staff id / hashed patient id.
pub const AT_SERIAL_NUMBER: Oid = Oid::new_unwrap("2.5.4.5");
/// title.
pub const AT_TITLE: Oid = Oid::new_unwrap("2.5.4.12");
/// userId (RFC 4519 uid): carries the patient signing-event id / device id.
pub const AT_UID: Oid = Oid::new_unwrap("0.9.2342.19200300.100.1.1");

/// ecdsa-with-SHA256 (RFC 5758).
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// prime256v1 / secp256r1 (NIST P-256) named curve.
pub const P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
/// rsaEncryption (PKCS#1): the RSA SPKI algorithm, also used as a CMS signatureAlgorithm.
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// sha256WithRSAEncryption (PKCS#1 v1.5 with SHA-256).
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
