//! Distinguished names with Chinese text (UTF8String) and GB 11643 ID-number checks.

use crate::error::{Error, Result};
use crate::oid;
use const_oid::ObjectIdentifier;
use der::asn1::{PrintableStringRef, Utf8StringRef};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

/// Builds a subject / issuer name, one attribute per RDN, in the order added.
/// Country is a PrintableString; everything else is UTF8String (GM/T 0015 allows Chinese text).
#[derive(Debug, Clone, Default)]
pub struct DnBuilder {
    attrs: Vec<(ObjectIdentifier, String)>,
}

impl DnBuilder {
    /// An empty name.
    pub fn new() -> Self {
        Self::default()
    }
    /// Append an attribute.
    #[must_use]
    pub fn attr(mut self, oid: ObjectIdentifier, value: impl Into<String>) -> Self {
        self.attrs.push((oid, value.into()));
        self
    }
    /// C= (two letters, e.g. CN).
    #[must_use]
    pub fn country(self, v: impl Into<String>) -> Self {
        self.attr(oid::AT_COUNTRY, v)
    }
    /// ST=
    #[must_use]
    pub fn state(self, v: impl Into<String>) -> Self {
        self.attr(oid::AT_STATE, v)
    }
    /// L=
    #[must_use]
    pub fn locality(self, v: impl Into<String>) -> Self {
        self.attr(oid::AT_LOCALITY, v)
    }
    /// O=
    #[must_use]
    pub fn organization(self, v: impl Into<String>) -> Self {
        self.attr(oid::AT_ORGANIZATION, v)
    }
    /// OU=
    #[must_use]
    pub fn organizational_unit(self, v: impl Into<String>) -> Self {
        self.attr(oid::AT_ORGANIZATIONAL_UNIT, v)
    }
    /// CN=
    #[must_use]
    pub fn common_name(self, v: impl Into<String>) -> Self {
        self.attr(oid::AT_COMMON_NAME, v)
    }
    /// serialNumber= (X.520 2.5.4.5)
    #[must_use]
    pub fn serial_number(self, v: impl Into<String>) -> Self {
        self.attr(oid::AT_SERIAL_NUMBER, v)
    }
    /// UID=
    #[must_use]
    pub fn uid(self, v: impl Into<String>) -> Self {
        self.attr(oid::AT_UID, v)
    }

    /// Encode the name.
    pub fn build(&self) -> Result<Name> {
        if self.attrs.is_empty() {
            return Err(Error::InvalidArgument("empty distinguished name".into()));
        }
        let mut seq = RdnSequence::default();
        for (oid, value) in &self.attrs {
            if value.is_empty() {
                return Err(Error::InvalidArgument(format!("empty value for {oid}")));
            }
            let any = if *oid == oid::AT_COUNTRY {
                let p = PrintableStringRef::new(value).map_err(|_| {
                    Error::InvalidArgument(format!("country {value:?} is not printable"))
                })?;
                der::Any::encode_from(&p)?
            } else {
                der::Any::encode_from(&Utf8StringRef::new(value)?)?
            };
            let rdn = RelativeDistinguishedName::try_from(vec![AttributeTypeAndValue {
                oid: *oid,
                value: any,
            }])?;
            seq.push(rdn);
        }
        Ok(Name::hazmat_from_rdn_sequence(seq))
    }
}

/// The value of the first attribute `oid` in a name, decoded as a string (UTF8String,
/// PrintableString, IA5String, BMPString are accepted).
pub fn name_attr(name: &Name, attr_oid: ObjectIdentifier) -> Option<String> {
    name.iter()
        .find(|atv| atv.oid == attr_oid)
        .and_then(|atv| any_to_string(&atv.value))
}

pub(crate) fn any_to_string(any: &der::Any) -> Option<String> {
    use der::{Tag, Tagged};
    match any.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
            std::str::from_utf8(any.value()).ok().map(str::to_owned)
        }
        Tag::BmpString => {
            let v = any.value();
            if !v.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = v
                .chunks_exact(2)
                .map(|c| match c {
                    [a, b] => u16::from_be_bytes([*a, *b]),
                    _ => 0,
                })
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// An RFC 4514-ish display of a name (for errors and reports), UTF-8 values shown as text.
pub fn display_name(name: &Name) -> String {
    let mut parts = Vec::new();
    for atv in name.iter() {
        let key = match atv.oid {
            o if o == oid::AT_COUNTRY => "C".to_owned(),
            o if o == oid::AT_ORGANIZATION => "O".to_owned(),
            o if o == oid::AT_ORGANIZATIONAL_UNIT => "OU".to_owned(),
            o if o == oid::AT_COMMON_NAME => "CN".to_owned(),
            o if o == oid::AT_LOCALITY => "L".to_owned(),
            o if o == oid::AT_STATE => "ST".to_owned(),
            o if o == oid::AT_SERIAL_NUMBER => "serialNumber".to_owned(),
            o if o == oid::AT_UID => "UID".to_owned(),
            o => o.to_string(),
        };
        let val = any_to_string(&atv.value).unwrap_or_else(|| "#?".to_owned());
        parts.push(format!("{key}={val}"));
    }
    parts.join(", ")
}

/// Validate an 18-character PRC resident identity number (GB 11643-1999): 17 digits and a
/// check character computed with ISO 7064 MOD 11-2 (`X` stands for 10).
pub fn validate_resident_id(id: &str) -> Result<()> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [u8; 11] = *b"10X98765432";
    let bytes = id.as_bytes();
    if bytes.len() != 18 {
        return Err(Error::InvalidArgument(
            "resident ID number must have 18 characters".into(),
        ));
    }
    let mut sum = 0u32;
    for (b, w) in bytes.iter().take(17).zip(WEIGHTS) {
        if !b.is_ascii_digit() {
            return Err(Error::InvalidArgument(
                "resident ID number: first 17 must be digits".into(),
            ));
        }
        sum += u32::from(b - b'0') * w;
    }
    let idx = usize::try_from(sum % 11).map_err(|_| Error::Internal("mod 11"))?;
    let expect = CHECK
        .get(idx)
        .copied()
        .ok_or(Error::Internal("mod 11 table"))?;
    let last = bytes.get(17).map(u8::to_ascii_uppercase);
    if last == Some(expect) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(
            "resident ID number check digit is wrong".into(),
        ))
    }
}
