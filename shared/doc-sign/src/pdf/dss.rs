//! The Document Security Store (ETSI EN 319 142-1 §5.4, PAdES B-LT): certificates, OCSP responses
//! and CRLs added to the catalog in an incremental update after the signatures, so a verifier
//! can validate them later without network access.

use crate::error::{Error, Result};
use crate::pdf::doc;
use crate::pdf::incremental;
use lopdf::{Dictionary, Object, Stream};

/// Validation material supplied by the caller (DER each).
#[derive(Debug, Clone, Default)]
pub struct LtvMaterial {
    /// Certificates: signer chains, TSA chain, OCSP responder certificates.
    pub certs: Vec<Vec<u8>>,
    /// OCSP responses (DER OCSPResponse).
    pub ocsps: Vec<Vec<u8>>,
    /// CRLs (DER CertificateList).
    pub crls: Vec<Vec<u8>>,
}

/// Append (or extend) the catalog's /DSS with `material` as one incremental update. Existing
/// signatures stay valid: only the catalog and new streams are written.
pub fn add_dss(pdf: &[u8], material: &LtvMaterial) -> Result<Vec<u8>> {
    if material.certs.is_empty() && material.ocsps.is_empty() && material.crls.is_empty() {
        return Err(Error::InvalidArgument("no LTV material given".into()));
    }
    let loaded = doc::load(pdf)?;
    let document = &loaded.doc;
    let root = doc::root_id(document)?;
    let mut catalog = doc::dict_of(document, root)?.clone();
    let mut dss = catalog
        .get(b"DSS")
        .ok()
        .and_then(|d| doc::deref(document, d))
        .and_then(|d| d.as_dict().ok())
        .cloned()
        .unwrap_or_default();
    dss.set("Type", Object::Name(b"DSS".to_vec()));
    let mut next = loaded.size.max(1);
    let mut objects = Vec::new();
    for (key, items) in [
        (&b"Certs"[..], &material.certs),
        (b"OCSPs", &material.ocsps),
        (b"CRLs", &material.crls),
    ] {
        if items.is_empty() {
            continue;
        }
        let mut arr = dss
            .get(key)
            .ok()
            .and_then(|a| doc::deref(document, a))
            .and_then(|a| a.as_array().ok())
            .cloned()
            .unwrap_or_default();
        for item in items {
            let id = next;
            next += 1;
            objects.push(incremental::object(
                id,
                0,
                &Object::Stream(Stream::new(Dictionary::new(), item.clone())),
            ));
            arr.push(Object::Reference((id, 0)));
        }
        dss.set(key.to_vec(), Object::Array(arr));
    }
    let dss_id = next;
    objects.push(incremental::object(dss_id, 0, &Object::Dictionary(dss)));
    catalog.set("DSS", Object::Reference((dss_id, 0)));
    objects.push(incremental::object(
        root.0,
        root.1,
        &Object::Dictionary(catalog),
    ));
    Ok(incremental::write(pdf, &loaded, objects)?.bytes)
}
