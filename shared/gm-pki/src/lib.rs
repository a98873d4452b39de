//! ShangMi PKI formats for Yiqian 医签: SM2/SM3 X.509 certificates and profiles, PKCS#10 CSRs,
//! CRLs, OCSP (RFC 6960), RFC 3161 time stamps, CMS SignedData (RFC 5652 / GB/T 35275) and
//! certificate path validation, GB/T 38540 electronic seals.
//!
//! Keys are used through [`Sm2Signer`], so a CA or TSA key can live in a crypto device and a
//! two-party key can sign its own CSR. Time and randomness are always parameters: nothing here
//! reads the clock or an implicit RNG. Parsers never panic and reject trailing data.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::indexing_slicing)]

pub mod cert;
pub mod cms;
pub mod crl;
pub mod csr;
pub mod error;
pub mod name;
pub mod ocsp;
pub mod oid;
pub mod path;
pub mod profile;
pub mod seal;
pub mod sigalg;
pub mod signer;
pub mod tsp;
mod util;

pub use cert::{CertificateParams, ParsedCertificate};
pub use error::{Error, PathError, Result};
pub use name::DnBuilder;
pub use signer::{DEFAULT_DISTID, Sm2Signer, SoftwareSigner};
pub use x509_cert::Certificate;

/// PEM-encode DER with a label (64-column base64, LF line endings).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    let mut rest = b64.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// All PEM blocks with `label` in `text`, decoded to DER.
pub fn pem_decode_all(label: &str, text: &str) -> Result<Vec<Vec<u8>>> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = rest.get(start + begin.len()..).unwrap_or("");
        let stop = after
            .find(&end)
            .ok_or_else(|| Error::malformed("PEM", format!("missing {end}")))?;
        let body: String = after
            .get(..stop)
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| Error::malformed("PEM base64", e))?;
        out.push(der);
        rest = after.get(stop + end.len()..).unwrap_or("");
    }
    Ok(out)
}
