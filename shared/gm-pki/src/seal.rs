//! Electronic seals per GB/T 38540-2020 (GM/T 0031 v4): `SESeal`, made and signed by the seal
//! authority (制章者), and `SES_Signature`, a seal applied to a document hash by the seal
//! holder (签章者).
//!
//! ```text
//! SESeal ::= SEQ { eSealInfo SES_SealInfo, cert OCTET STRING, signAlgID OID, signedValue BIT STRING }
//! SES_SealInfo ::= SEQ { header SES_Header, esID IA5String, property SES_ESPropertyInfo,
//!                        picture SES_ESPictrueInfo, extDatas ExtensionDatas OPTIONAL }
//! SES_Header ::= SEQ { id IA5String "ES", version INTEGER 4, vid IA5String }
//! SES_ESPropertyInfo ::= SEQ { type INTEGER, name UTF8String, certListType INTEGER,
//!                              certList SES_CertList, createDate, validStart, validEnd GeneralizedTime }
//! SES_CertList ::= CHOICE { certs SEQ OF OCTET STRING,                               -- certListType 1
//!                           certDigestList SEQ OF { type PrintableString, value OCTET STRING } } -- 2
//! SES_ESPictrueInfo ::= SEQ { type IA5String, data OCTET STRING, width INTEGER, height INTEGER }
//! SES_Signature ::= SEQ { toSign TBS_Sign, cert OCTET STRING, signatureAlgID OID,
//!                         signature BIT STRING, timeStamp [0] EXPLICIT BIT STRING OPTIONAL }
//! TBS_Sign ::= SEQ { version INTEGER 4, eseal SESeal, timeInfo GeneralizedTime,
//!                    dataHash BIT STRING, propertyInfo IA5String,
//!                    extDatas [0] EXPLICIT ExtensionDatas OPTIONAL }
//! ExtData ::= SEQ { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
//! ```
//!
//! What is signed (as the widely used ofdrw implementation does): `signedValue` is the SM2
//! signature over DER(`eSealInfo`), `signature` over DER(`toSign`), both SM3withSM2 with the
//! default SM2 ID. Implementations disagree on whether `timeStamp` and `extDatas` are tagged:
//! we write them tagged (`[0] EXPLICIT`) and read both forms. `timeStamp` holds a DER RFC 3161
//! token over the signature value.

use crate::cert::ParsedCertificate;
use crate::error::{Error, Result};
use crate::oid;
use crate::signer::{self, Sm2Signer};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, GeneralizedTime, Ia5String, OctetString, PrintableString};
use der::{Decode, Encode, Sequence, Tag, TagNumber, Tagged};
use std::time::SystemTime;

/// Largest seal or seal signature accepted for decoding.
pub const MAX_SEAL_LEN: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
struct HeaderAsn {
    id: Ia5String,
    version: u32,
    vid: Ia5String,
}

#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
struct CertDigestAsn {
    kind: PrintableString,
    value: OctetString,
}

#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
struct PropertyAsn {
    kind: u32,
    name: String,
    cert_list_type: u32,
    /// SEQUENCE OF; the element type depends on `cert_list_type`.
    cert_list: Vec<der::Any>,
    create_date: GeneralizedTime,
    valid_start: GeneralizedTime,
    valid_end: GeneralizedTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
struct PictureAsn {
    kind: Ia5String,
    data: OctetString,
    width: u32,
    height: u32,
}

/// ExtData.
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
pub struct ExtData {
    /// extnID.
    pub id: ObjectIdentifier,
    /// critical (DEFAULT FALSE).
    #[asn1(default = "Default::default")]
    pub critical: bool,
    /// extnValue.
    pub value: OctetString,
}

#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
struct SealInfoAsn {
    header: HeaderAsn,
    es_id: Ia5String,
    property: PropertyAsn,
    picture: PictureAsn,
    /// ExtensionDatas, untagged or `[0]` (read both; written untagged as the standard says).
    ext_datas: Option<der::Any>,
}

#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
struct SealAsn {
    info: SealInfoAsn,
    cert: OctetString,
    sign_alg: ObjectIdentifier,
    signed_value: BitString,
}

#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
struct TbsSignAsn {
    version: u32,
    eseal: SealAsn,
    time_info: GeneralizedTime,
    data_hash: BitString,
    property_info: Ia5String,
    /// `[0] EXPLICIT ExtensionDatas` (written), or untagged (read).
    ext_datas: Option<der::Any>,
}

#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
struct SignatureAsn {
    to_sign: TbsSignAsn,
    cert: OctetString,
    sign_alg: ObjectIdentifier,
    signature: BitString,
    /// `[0] EXPLICIT BIT STRING` (written), or an untagged BIT STRING (read).
    time_stamp: Option<der::Any>,
}

/// The seal's picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealPicture {
    /// Image type, e.g. `png`.
    pub kind: String,
    /// Image bytes.
    pub data: Vec<u8>,
    /// Display width in millimetres.
    pub width_mm: u32,
    /// Display height in millimetres.
    pub height_mm: u32,
}

/// Who may use the seal (SES_CertList).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertList {
    /// certListType 1: the signers' certificates (DER).
    Certs(Vec<Vec<u8>>),
    /// certListType 2: (hash algorithm name, certificate hash).
    Digests(Vec<(String, Vec<u8>)>),
}

/// The contents of a seal (SES_SealInfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealInfo {
    /// Manufacturer id (vid).
    pub vid: String,
    /// Seal id (esID).
    pub es_id: String,
    /// Seal type: 1 organisation seal (单位印章), 2 personal seal (个人印章).
    pub seal_type: u32,
    /// Seal name.
    pub name: String,
    /// Who may use it.
    pub cert_list: CertList,
    /// When it was made.
    pub created: SystemTime,
    /// Valid from.
    pub valid_start: SystemTime,
    /// Valid until.
    pub valid_end: SystemTime,
    /// The picture.
    pub picture: SealPicture,
    /// Extension data (encoded ExtensionDatas), if any.
    pub ext_datas: Vec<ExtData>,
}

/// A decoded SESeal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// Seal contents.
    pub info: SealInfo,
    /// The seal authority's certificate (DER).
    pub maker_cert: Vec<u8>,
    /// Signature algorithm.
    pub sign_alg: ObjectIdentifier,
    /// DER SM2 signature over DER(eSealInfo).
    pub signed_value: Vec<u8>,
    der: Vec<u8>,
    info_der: Vec<u8>,
}

/// A decoded SES_Signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealSignature {
    /// The seal used.
    pub seal: Seal,
    /// When (timeInfo).
    pub time: SystemTime,
    /// The document hash (dataHash).
    pub data_hash: Vec<u8>,
    /// What was signed (propertyInfo), e.g. a document id.
    pub property_info: String,
    /// Extension data.
    pub ext_datas: Vec<ExtData>,
    /// The signer's certificate (DER).
    pub signer_cert: Vec<u8>,
    /// Signature algorithm.
    pub sign_alg: ObjectIdentifier,
    /// DER SM2 signature over DER(toSign).
    pub signature: Vec<u8>,
    /// RFC 3161 token over the signature value, if any.
    pub time_stamp: Option<Vec<u8>>,
    tbs_der: Vec<u8>,
}

fn ia5(s: &str, what: &str) -> Result<Ia5String> {
    Ia5String::new(s).map_err(|_| Error::InvalidArgument(format!("{what} must be ASCII (IA5)")))
}

fn gtime(t: SystemTime) -> Result<GeneralizedTime> {
    GeneralizedTime::from_system_time(t)
        .map_err(|_| Error::InvalidArgument("time out of range".into()))
}

fn context0(inner_der: Vec<u8>) -> Result<der::Any> {
    Ok(der::Any::new(
        Tag::ContextSpecific {
            constructed: true,
            number: TagNumber(0),
        },
        inner_der,
    )?)
}

/// The DER of a field written `[0] EXPLICIT X` or as a bare `X` with tag `bare`.
fn untag(any: &der::Any, bare: Tag) -> Result<Vec<u8>> {
    let ctx0 = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber(0),
    };
    if any.tag() == ctx0 {
        Ok(any.value().to_vec())
    } else if any.tag() == bare {
        Ok(any.to_der()?)
    } else {
        Err(Error::malformed(
            "seal",
            format!("unexpected tag {}", any.tag()),
        ))
    }
}

fn ext_from(any: Option<&der::Any>) -> Result<Vec<ExtData>> {
    match any {
        None => Ok(Vec::new()),
        Some(a) => {
            let der = untag(a, Tag::Sequence)?;
            Vec::<ExtData>::from_der(&der).map_err(|e| Error::malformed("ExtensionDatas", e))
        }
    }
}

impl SealInfo {
    fn to_asn(&self) -> Result<SealInfoAsn> {
        let (cert_list_type, cert_list) = match &self.cert_list {
            CertList::Certs(certs) => (
                1,
                certs
                    .iter()
                    .map(|c| der::Any::encode_from(&OctetString::new(c.clone())?))
                    .collect::<der::Result<Vec<_>>>()?,
            ),
            CertList::Digests(ds) => (
                2,
                ds.iter()
                    .map(|(k, v)| {
                        der::Any::encode_from(&CertDigestAsn {
                            kind: PrintableString::new(k)?,
                            value: OctetString::new(v.clone())?,
                        })
                    })
                    .collect::<der::Result<Vec<_>>>()?,
            ),
        };
        Ok(SealInfoAsn {
            header: HeaderAsn {
                id: ia5("ES", "id")?,
                version: 4,
                vid: ia5(&self.vid, "vid")?,
            },
            es_id: ia5(&self.es_id, "esID")?,
            property: PropertyAsn {
                kind: self.seal_type,
                name: self.name.clone(),
                cert_list_type,
                cert_list,
                create_date: gtime(self.created)?,
                valid_start: gtime(self.valid_start)?,
                valid_end: gtime(self.valid_end)?,
            },
            picture: PictureAsn {
                kind: ia5(&self.picture.kind, "picture type")?,
                data: OctetString::new(self.picture.data.clone())?,
                width: self.picture.width_mm,
                height: self.picture.height_mm,
            },
            ext_datas: if self.ext_datas.is_empty() {
                None
            } else {
                Some(der::Any::encode_from(&self.ext_datas)?)
            },
        })
    }

    fn from_asn(a: &SealInfoAsn) -> Result<Self> {
        if a.header.id.as_str() != "ES" || a.header.version != 4 {
            return Err(Error::malformed(
                "SESeal",
                format!(
                    "header {:?} version {} (only \"ES\" version 4)",
                    a.header.id.as_str(),
                    a.header.version
                ),
            ));
        }
        let p = &a.property;
        let cert_list = match p.cert_list_type {
            1 => CertList::Certs(
                p.cert_list
                    .iter()
                    .map(|x| Ok(x.decode_as::<OctetString>()?.into_bytes().into_vec()))
                    .collect::<Result<_>>()?,
            ),
            2 => CertList::Digests(
                p.cert_list
                    .iter()
                    .map(|x| {
                        let d: CertDigestAsn = x.decode_as()?;
                        Ok((d.kind.as_str().to_owned(), d.value.into_bytes().into_vec()))
                    })
                    .collect::<Result<_>>()?,
            ),
            n => {
                return Err(Error::malformed(
                    "SESeal",
                    format!("certListType {n} (1 or 2)"),
                ));
            }
        };
        Ok(Self {
            vid: a.header.vid.as_str().to_owned(),
            es_id: a.es_id.as_str().to_owned(),
            seal_type: p.kind,
            name: p.name.clone(),
            cert_list,
            created: p.create_date.to_system_time(),
            valid_start: p.valid_start.to_system_time(),
            valid_end: p.valid_end.to_system_time(),
            picture: SealPicture {
                kind: a.picture.kind.as_str().to_owned(),
                data: a.picture.data.as_bytes().to_vec(),
                width_mm: a.picture.width,
                height_mm: a.picture.height,
            },
            ext_datas: ext_from(a.ext_datas.as_ref())?,
        })
    }
}

/// Makes a SESeal: `info` signed by the seal authority (`maker_cert`, `maker`).
pub fn make_seal(
    info: &SealInfo,
    maker_cert: &ParsedCertificate,
    maker: &dyn Sm2Signer,
) -> Result<Vec<u8>> {
    if maker.public_key() != maker_cert.public_key()? {
        return Err(Error::InvalidArgument(
            "the seal maker's key does not match its certificate".into(),
        ));
    }
    if info.valid_end <= info.valid_start {
        return Err(Error::InvalidArgument(
            "the seal's validity ends before it starts".into(),
        ));
    }
    let asn = info.to_asn()?;
    let signed = signer::sign_der(maker, &asn.to_der()?)?;
    Ok(SealAsn {
        info: asn,
        cert: OctetString::new(maker_cert.der().to_vec())?,
        sign_alg: oid::SM3_WITH_SM2,
        signed_value: BitString::from_bytes(&signed)?,
    }
    .to_der()?)
}

fn seal_from_asn(a: SealAsn) -> Result<Seal> {
    let der = a.to_der()?;
    let info_der = a.info.to_der()?;
    Ok(Seal {
        info: SealInfo::from_asn(&a.info)?,
        maker_cert: a.cert.into_bytes().into_vec(),
        sign_alg: a.sign_alg,
        signed_value: a
            .signed_value
            .as_bytes()
            .ok_or_else(|| Error::malformed("SESeal", "signedValue has unused bits"))?
            .to_vec(),
        der,
        info_der,
    })
}

impl Seal {
    /// Decodes a DER SESeal (untrusted bytes: errors, never panics; trailing data refused).
    pub fn from_der(der_bytes: &[u8]) -> Result<Self> {
        if der_bytes.len() > MAX_SEAL_LEN {
            return Err(Error::malformed("SESeal", "too large"));
        }
        seal_from_asn(SealAsn::from_der(der_bytes).map_err(|e| Error::malformed("SESeal", e))?)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Checks the seal authority's signature and the seal's validity at `at`; returns the
    /// authority's certificate (path validation of it is the caller's).
    pub fn verify(&self, at: SystemTime) -> Result<ParsedCertificate> {
        if self.sign_alg != oid::SM3_WITH_SM2 {
            return Err(Error::UnsupportedAlgorithm(self.sign_alg.to_string()));
        }
        let maker = ParsedCertificate::from_der(&self.maker_cert)?;
        signer::verify_der(
            &maker.public_key()?,
            signer::DEFAULT_DISTID,
            &self.info_der,
            &self.signed_value,
        )?;
        if at < self.info.valid_start || at > self.info.valid_end {
            return Err(Error::InvalidArgument(
                "the seal is not valid at this time".into(),
            ));
        }
        Ok(maker)
    }
}

/// What a seal signature covers.
#[derive(Debug, Clone)]
pub struct SealSignParams<'a> {
    /// The DER SESeal to apply.
    pub seal: &'a [u8],
    /// The signing time (timeInfo).
    pub time: SystemTime,
    /// The document's hash (SM3).
    pub data_hash: &'a [u8],
    /// What it is, e.g. `document:<id>;version:<n>` (ASCII).
    pub property_info: &'a str,
}

/// Applies a seal: `SES_Signature` over the document hash, signed by the seal holder. The
/// holder's certificate must be in the seal's certificate list. `time_stamp` (an RFC 3161
/// token over the signature value) may be added with [`add_time_stamp`].
pub fn sign_with_seal(
    p: &SealSignParams<'_>,
    signer_cert: &ParsedCertificate,
    signer: &dyn Sm2Signer,
) -> Result<Vec<u8>> {
    let seal = Seal::from_der(p.seal)?;
    let allowed = match &seal.info.cert_list {
        CertList::Certs(c) => c.iter().any(|c| c == signer_cert.der()),
        CertList::Digests(d) => d
            .iter()
            .any(|(_, h)| *h == signer::sm3(signer_cert.der()).as_slice()),
    };
    if !allowed {
        return Err(Error::InvalidArgument(
            "the signer's certificate is not in the seal's certificate list".into(),
        ));
    }
    if signer.public_key() != signer_cert.public_key()? {
        return Err(Error::InvalidArgument(
            "the signer's key does not match its certificate".into(),
        ));
    }
    let tbs = TbsSignAsn {
        version: 4,
        eseal: SealAsn::from_der(p.seal).map_err(|e| Error::malformed("SESeal", e))?,
        time_info: gtime(p.time)?,
        data_hash: BitString::from_bytes(p.data_hash)?,
        property_info: ia5(p.property_info, "propertyInfo")?,
        ext_datas: None,
    };
    let sig = signer::sign_der(signer, &tbs.to_der()?)?;
    Ok(SignatureAsn {
        to_sign: tbs,
        cert: OctetString::new(signer_cert.der().to_vec())?,
        sign_alg: oid::SM3_WITH_SM2,
        signature: BitString::from_bytes(&sig)?,
        time_stamp: None,
    }
    .to_der()?)
}

/// Adds (or replaces) the `[0] timeStamp` of a DER SES_Signature.
pub fn add_time_stamp(ses_signature: &[u8], token: &[u8]) -> Result<Vec<u8>> {
    let mut a =
        SignatureAsn::from_der(ses_signature).map_err(|e| Error::malformed("SES_Signature", e))?;
    a.time_stamp = Some(context0(BitString::from_bytes(token)?.to_der()?)?);
    Ok(a.to_der()?)
}

impl SealSignature {
    /// Decodes a DER SES_Signature (untrusted bytes: errors, never panics).
    pub fn from_der(der_bytes: &[u8]) -> Result<Self> {
        if der_bytes.len() > MAX_SEAL_LEN {
            return Err(Error::malformed("SES_Signature", "too large"));
        }
        let a =
            SignatureAsn::from_der(der_bytes).map_err(|e| Error::malformed("SES_Signature", e))?;
        if a.to_sign.version != 4 {
            return Err(Error::malformed(
                "SES_Signature",
                format!("version {} (only 4)", a.to_sign.version),
            ));
        }
        let tbs_der = a.to_sign.to_der()?;
        let time_stamp = match &a.time_stamp {
            None => None,
            Some(any) => {
                let bits = BitString::from_der(&untag(any, Tag::BitString)?)
                    .map_err(|e| Error::malformed("SES_Signature timeStamp", e))?;
                Some(
                    bits.as_bytes()
                        .ok_or_else(|| Error::malformed("SES_Signature", "timeStamp bits"))?
                        .to_vec(),
                )
            }
        };
        let bytes = |b: &BitString, what: &'static str| {
            b.as_bytes()
                .map(<[u8]>::to_vec)
                .ok_or_else(|| Error::malformed("SES_Signature", what))
        };
        Ok(Self {
            data_hash: bytes(&a.to_sign.data_hash, "dataHash has unused bits")?,
            signature: bytes(&a.signature, "signature has unused bits")?,
            time: a.to_sign.time_info.to_system_time(),
            property_info: a.to_sign.property_info.as_str().to_owned(),
            ext_datas: ext_from(a.to_sign.ext_datas.as_ref())?,
            seal: seal_from_asn(a.to_sign.eseal)?,
            signer_cert: a.cert.into_bytes().into_vec(),
            sign_alg: a.sign_alg,
            time_stamp,
            tbs_der,
        })
    }

    /// Checks the seal (authority signature, validity at the signing time), that the signer is
    /// in its certificate list, the signer's signature, and that `data_hash` is `expected_hash`.
    /// Returns the signer's certificate.
    pub fn verify(&self, expected_hash: &[u8]) -> Result<ParsedCertificate> {
        self.seal.verify(self.time)?;
        if self.sign_alg != oid::SM3_WITH_SM2 {
            return Err(Error::UnsupportedAlgorithm(self.sign_alg.to_string()));
        }
        let cert = ParsedCertificate::from_der(&self.signer_cert)?;
        let listed = match &self.seal.info.cert_list {
            CertList::Certs(c) => c.contains(&self.signer_cert),
            CertList::Digests(d) => d
                .iter()
                .any(|(_, h)| *h == signer::sm3(&self.signer_cert).as_slice()),
        };
        if !listed {
            return Err(Error::InvalidArgument(
                "the signer is not in the seal's certificate list".into(),
            ));
        }
        signer::verify_der(
            &cert.public_key()?,
            signer::DEFAULT_DISTID,
            &self.tbs_der,
            &self.signature,
        )?;
        if self.data_hash != expected_hash {
            return Err(Error::DigestMismatch("SES_Signature dataHash"));
        }
        Ok(cert)
    }
}
