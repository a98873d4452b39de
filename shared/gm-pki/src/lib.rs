//! ShangMi PKI formats: SM2 X.509 certificates, CSR, CRL, OCSP, CMS, RFC 3161 and GB/T 38540
//! seals. Built under issue 4.
#![forbid(unsafe_code)]
