//! Documents (issue 7): the archive of uploaded and signed documents, signing with the
//! organisation seal, verification reports.
//!
//! * [`store`]: content-addressed file storage by SM3 behind [`BlobStore`] (`put(bytes) -> sm3`,
//!   `get(sm3)`), local directory `<data_dir>/documents` by default.
//! * [`db`]: the `documents`, `document_versions`, `document_signers`, `document_seals` tables.
//! * [`Documents`]: upload (type sniffing, validation, conversion to PDF), signing with the
//!   organisation seal (device key, seal-CA certificate, local TSA, PAdES B-LT), external-signer
//!   signing in two steps ([`Documents::prepare_external`], [`Documents::complete_external`]) for
//!   the co-signing and patient flows, verification.
//! * [`http`]: the REST routes; [`report`]: JSON and Chinese text/HTML verification reports.

pub mod convert;
pub mod db;
pub mod http;
pub mod report;
pub mod report_pdf;
pub mod s3;
pub mod store;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crypto_device::KeyId;
use doc_sign::{LtvMaterial, PdfSignOptions, TimestampAuthority};
use gm_pki::ParsedCertificate;
use tokio::runtime::Handle;
use tokio::sync::{Mutex, Semaphore};

pub use db::{DocumentRow, Metadata, Search, VersionRow};
pub use doc_sign::Placement;
pub use s3::{S3Settings, S3Store};
pub use store::{BlobStore, LocalStore, is_sm3_hex, sm3_hex};

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::pki::{DeviceSigner, Pki, blocking, now_seconds};
use crate::store::Db;

/// Limits and tools of the documents service (`[documents]` in cosign.toml).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest upload accepted, in bytes; larger requests get 413 before their body is read.
    pub max_upload: usize,
    /// Concurrent CPU-heavy jobs (signing, verification, image conversion).
    pub workers: usize,
    /// DOC/DOCX conversion (LibreOffice pool, timeouts, zip-bomb limits).
    pub convert: convert::ConvertSettings,
    /// Keep the files in an S3-compatible bucket instead of `<data_dir>/documents`.
    pub s3: Option<S3Settings>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_upload: 64 * 1024 * 1024,
            workers: 2,
            convert: convert::ConvertSettings::default(),
            s3: None,
        }
    }
}

/// Why a document operation was refused (each maps to a 4xx with its own text), or failed.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The bytes are not a file of a supported kind, or are broken / encrypted.
    #[error("{0}")]
    Invalid(String),
    /// A supported container holding something we do not accept.
    #[error("unsupported type: {0}")]
    UnsupportedType(String),
    /// A parameter is wrong (placement, metadata).
    #[error("{0}")]
    Argument(String),
    /// No such document or version.
    #[error("not found")]
    NotFound,
    /// Someone else changed the document meanwhile; retry.
    #[error("conflict")]
    Conflict,
    /// Server-side failure.
    #[error(transparent)]
    Server(#[from] Error),
}

impl From<doc_sign::Error> for DocError {
    fn from(e: doc_sign::Error) -> Self {
        match e {
            doc_sign::Error::MalformedPdf(m) => Self::Invalid(format!("malformed PDF: {m}")),
            doc_sign::Error::Unsupported(m) => Self::Invalid(format!("unsupported PDF: {m}")),
            doc_sign::Error::NotPermitted(m) => {
                Self::Argument(format!("the document does not permit this: {m}"))
            }
            doc_sign::Error::InvalidArgument(m) => Self::Argument(m),
            doc_sign::Error::Image(m) => Self::Invalid(format!("bad image: {m}")),
            other => Self::Server(Error::Pki(gm_pki::Error::Signer(other.to_string()))),
        }
    }
}

/// What kind of file an upload is, from its bytes (the declared type is not trusted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `%PDF-`.
    Pdf,
    /// A ZIP holding `word/document.xml` (Office Open XML).
    Docx,
    /// An OLE2 compound file (Word 97–2003).
    Doc,
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
}

impl FileKind {
    /// Sniffs the first bytes.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        let head = bytes.get(..bytes.len().min(1024)).unwrap_or_default();
        if head.windows(5).any(|w| w == b"%PDF-") {
            Some(Self::Pdf)
        } else if head.starts_with(b"PK\x03\x04") {
            Some(Self::Docx)
        } else if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
            Some(Self::Doc)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else {
            None
        }
    }

    /// MIME type.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Doc => "application/msword",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }

    /// Usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Docx => "docx",
            Self::Doc => "doc",
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }
}

/// The organisation seal: certificate (issued by the seal CA), chain and device key.
#[derive(Debug, Clone)]
pub struct SealIdentity {
    /// Seal certificate.
    pub cert: ParsedCertificate,
    /// Seal CA, root.
    pub chain: Vec<ParsedCertificate>,
    /// Key in the crypto device.
    pub signer: DeviceSigner,
    /// PNG shown in the appearance.
    pub picture: Vec<u8>,
    /// The GB/T 38540 SESeal (DER), made by the seal CA for this certificate.
    pub seseal: Vec<u8>,
}

/// Where the signature goes and what it shows (`POST /api/v1/documents/{id}/sign`).
#[derive(Debug, Clone)]
pub struct SignRequest {
    /// Widget placement; its layers are replaced by the seal picture and a text block.
    pub placement: Placement,
    /// `/Reason`.
    pub reason: Option<String>,
    /// `/Location`.
    pub location: Option<String>,
}

/// A PDF signature waiting for an external signer's SM2 signature over `to_be_signed`.
#[derive(Debug)]
pub struct ExternalSigning {
    prepared: doc_sign::PreparedPdf,
    cms: gm_pki::cms::PreparedSignature,
}

impl ExternalSigning {
    /// The DER signed attributes (SET OF) the signer signs with SM2 (e = SM3(Z ‖ these bytes)).
    pub fn to_be_signed(&self) -> &[u8] {
        self.cms.to_be_signed()
    }

    /// SM3 of the PDF byte ranges (the messageDigest attribute).
    pub fn pdf_digest(&self) -> [u8; 32] {
        self.prepared.digest_sm3()
    }
}

/// The documents service.
#[derive(Debug)]
pub struct Documents {
    store: Arc<dyn BlobStore>,
    settings: Settings,
    seal: Mutex<Option<SealIdentity>>,
    workers: Arc<Semaphore>,
    converter: convert::Converter,
}

/// Placeholder space for the CMS: certificates, time stamp with its chain, seal structures.
const CONTENTS_RESERVE: usize = 32 * 1024;

impl Documents {
    /// Opens the store: the S3-compatible bucket of `settings.s3`, else the local directory
    /// `<data_dir>/documents`.
    pub fn open(data_dir: &std::path::Path, settings: Settings) -> Result<Self> {
        let store: Arc<dyn BlobStore> = match &settings.s3 {
            Some(s3) => Arc::new(S3Store::open(s3)?),
            None => Arc::new(LocalStore::open(&data_dir.join("documents"))?),
        };
        Self::with_store(store, &data_dir.join("converter"), settings)
    }

    /// A service over any store; LibreOffice profiles and conversion jobs live under `work`.
    pub fn with_store(
        store: Arc<dyn BlobStore>,
        work: &std::path::Path,
        settings: Settings,
    ) -> Result<Self> {
        let workers = Arc::new(Semaphore::new(settings.workers.max(1)));
        let converter = convert::Converter::new(work, settings.convert.clone())?;
        Ok(Self {
            store,
            settings,
            seal: Mutex::new(None),
            workers,
            converter,
        })
    }

    /// The file store (`put(bytes) -> sm3`, `get(sm3)`).
    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    /// The limits in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs CPU-heavy work on a blocking thread, at most `workers` at a time.
    pub async fn cpu<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("worker pool closed"))?;
        blocking(f).await
    }

    /// Checks and stores an upload: sniffs its kind, validates it, converts it to PDF when it is
    /// not one, stores the bytes (original and PDF) and records the document. Nothing is stored
    /// when the input is refused.
    pub async fn upload(
        &self,
        db: &Db,
        bytes: Vec<u8>,
        filename: &str,
        meta: &Metadata,
        actor: &str,
    ) -> std::result::Result<DocumentRow, DocError> {
        if bytes.is_empty() {
            return Err(DocError::Invalid("the file is empty (0 bytes)".into()));
        }
        let kind = FileKind::sniff(&bytes).ok_or_else(|| {
            DocError::UnsupportedType("not a PDF, DOCX, DOC, JPEG or PNG file".into())
        })?;
        let bytes = Arc::new(bytes);
        let pdf: Option<Vec<u8>> = match kind {
            FileKind::Pdf => {
                let b = bytes.clone();
                self.cpu(move || doc_sign::verify_pdf(&b).map(|_| ()))
                    .await??;
                None
            }
            FileKind::Docx | FileKind::Doc => Some(self.word_to_pdf(&bytes, kind).await?),
            FileKind::Jpeg | FileKind::Png => {
                let b = bytes.clone();
                Some(self.cpu(move || convert::image_to_pdf(&b, kind)).await??)
            }
        };
        let original_sm3 = self.store.put(bytes.to_vec()).await?;
        let mut versions_owned = vec![(
            "original",
            original_sm3,
            bytes.len(),
            kind.media_type(),
            filename.to_owned(),
        )];
        if let Some(pdf) = pdf {
            let len = pdf.len();
            let sm3 = self.store.put(pdf).await?;
            versions_owned.push((
                "converted",
                sm3,
                len,
                FileKind::Pdf.media_type(),
                pdf_name(filename),
            ));
        }
        let versions: Vec<db::NewVersion<'_>> = versions_owned
            .iter()
            .map(|(k, s, n, m, f)| db::NewVersion {
                kind: k,
                sm3: s,
                size: *n,
                media_type: m,
                filename: f,
            })
            .collect();
        let id = uuid::Uuid::new_v4().to_string();
        let at = now_ms();
        db.insert_document(&id, meta, &versions, actor, at).await?;
        db.document(&id)
            .await?
            .ok_or(DocError::Server(Error::Internal("document vanished")))
    }

    /// Page `page` (from 1) of a PDF as a PNG `width` pixels wide, rendered by poppler's
    /// `pdftoppm` in the converter's bounded pool.
    pub async fn render_page(
        &self,
        pdf: &[u8],
        page: u32,
        width: u32,
    ) -> std::result::Result<Vec<u8>, DocError> {
        self.converter.pdf_page_png(pdf, page, width).await
    }

    /// A Word file (DOCX or DOC, sniffed) as LibreOffice's PDF of it: what the doctor's phone
    /// shows of a Word document before signing it. Anything else is refused.
    pub async fn word_as_pdf(&self, bytes: Vec<u8>) -> std::result::Result<Vec<u8>, DocError> {
        match FileKind::sniff(&bytes) {
            Some(kind @ (FileKind::Docx | FileKind::Doc)) => {
                self.word_to_pdf(&Arc::new(bytes), kind).await
            }
            _ => Err(DocError::UnsupportedType("not a DOCX or DOC file".into())),
        }
    }

    /// A DOCX (checked for zip bombs first) or DOC converted by LibreOffice.
    async fn word_to_pdf(
        &self,
        bytes: &Arc<Vec<u8>>,
        kind: FileKind,
    ) -> std::result::Result<Vec<u8>, DocError> {
        if kind == FileKind::Docx {
            let b = bytes.clone();
            let limits = self.settings.convert.clone();
            self.cpu(move || convert::check_docx(&b, &limits)).await??;
        }
        self.converted_pdf(bytes, kind).await
    }

    /// LibreOffice's PDF of a DOC/DOCX, checked to be a readable PDF.
    async fn converted_pdf(
        &self,
        bytes: &[u8],
        kind: FileKind,
    ) -> std::result::Result<Vec<u8>, DocError> {
        let pdf = self
            .converter
            .office_to_pdf(bytes, kind.extension())
            .await?;
        let check = Arc::new(pdf);
        let c = check.clone();
        self.cpu(move || doc_sign::verify_pdf(&c).map(|_| ()))
            .await??;
        Arc::try_unwrap(check)
            .map_err(|_| DocError::Server(Error::Internal("converted PDF still shared")))
    }

    /// The bytes of a version (`None` for the current one).
    pub async fn version_bytes(
        &self,
        db: &Db,
        id: &str,
        version: Option<i64>,
    ) -> std::result::Result<(VersionRow, Vec<u8>), DocError> {
        let doc = db.document(id).await?.ok_or(DocError::NotFound)?;
        let want = version.unwrap_or(doc.current_version);
        let row = db
            .document_versions(id)
            .await?
            .into_iter()
            .find(|v| v.version == want)
            .ok_or(DocError::NotFound)?;
        let bytes = self
            .store
            .get(&row.sm3)
            .await?
            .ok_or(DocError::Server(Error::Internal(
                "a recorded document file is missing from the store",
            )))?;
        Ok((row, bytes))
    }

    /// The organisation seal, created on first use: an SM2 key generated in the crypto device,
    /// a certificate from the seal CA, a seal picture.
    pub async fn org_seal(
        &self,
        db: &Db,
        pki: &Pki,
        device: Arc<dyn crypto_device::CryptoDevice>,
        org: &str,
    ) -> Result<SealIdentity> {
        let mut cached = self.seal.lock().await;
        if let Some(s) = cached.as_ref() {
            return Ok(s.clone());
        }
        let row = if let Some(row) = db.seal("org").await? {
            row
        } else {
            {
                let (key, _) = device.generate_sm2("documents:seal:org").await?;
                let signer = DeviceSigner::new(device.clone(), key.clone()).await?;
                let subject = gm_pki::DnBuilder::new()
                    .country("CN")
                    .organization(org)
                    .organizational_unit("电子印章 Seal")
                    .common_name(format!("{org} 电子签章"))
                    .build()?;
                let csr_signer = signer.clone();
                let csr =
                    blocking(move || gm_pki::csr::build_csr(&subject, &csr_signer, &[])).await??;
                let cert = pki
                    .issue_from_csr(
                        db,
                        "seal",
                        &csr,
                        crate::pki::IssueProfile::Organisation(crate::pki::OrganisationInfo {
                            organisation: org.to_owned(),
                            seal_name: format!("{org} 电子签章"),
                            credit_code: None,
                        }),
                        std::time::Duration::from_secs(1825 * 24 * 3600),
                        &crate::pki::Actor::SYSTEM,
                    )
                    .await
                    .map_err(|e| match e {
                        crate::pki::PkiError::Server(e) => e,
                        other => Error::Config(format!("seal certificate: {other}")),
                    })?
                    .cert;
                let picture = doc_sign::pdf::appearance::round_seal_png(240)
                    .map_err(|_| Error::Internal("seal picture"))?;
                let seseal = make_org_seseal(pki, &cert, org, &picture).await?;
                let row = db::SealRow {
                    name: "org".into(),
                    key_id: key.0.clone(),
                    cert_serial: cert.serial_hex(),
                    picture,
                    seseal,
                };
                if db.insert_seal(&row, now_ms()).await? {
                    row
                } else {
                    // Another instance created it first: use theirs (our key stays unused).
                    db.seal("org")
                        .await?
                        .ok_or(Error::Internal("seal row vanished"))?
                }
            }
        };
        let stored = db
            .certificate_by_serial(&row.cert_serial)
            .await?
            .ok_or(Error::Internal("the seal certificate is missing"))?;
        let cert = ParsedCertificate::from_der(&stored.der)?;
        let signer = DeviceSigner::new(device, KeyId(row.key_id.clone())).await?;
        let chain = ["seal", "root"]
            .iter()
            .filter_map(|n| pki.authority(n))
            .map(|a| a.cert.clone())
            .collect();
        let seal = SealIdentity {
            cert,
            chain,
            signer,
            picture: row.picture,
            seseal: row.seseal,
        };
        *cached = Some(seal.clone());
        Ok(seal)
    }

    /// Signs the current PDF version of document `id` with the organisation seal (PAdES B-T
    /// with the local TSA, then B-LT: chain, OCSP and CRLs in the DSS) and records it as a new
    /// version.
    pub async fn sign_with_seal(
        &self,
        ctx: &SignContext,
        id: &str,
        req: &SignRequest,
        actor: &str,
    ) -> std::result::Result<(DocumentRow, SignedInfo), DocError> {
        let (row, pdf) = self.version_bytes(&ctx.db, id, None).await?;
        if row.media_type != FileKind::Pdf.media_type() {
            return Err(DocError::Argument(
                "the current version is not a PDF".into(),
            ));
        }
        let seal = self
            .org_seal(&ctx.db, &ctx.pki, ctx.device.clone(), &ctx.organisation)
            .await?;
        let time = signing_time();
        let placement = placement_for(&req.placement, &seal, time)?;
        let opts = seal_options(req, placement, time);
        let original = hex::decode(&row.original_sm3)
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or(DocError::Server(Error::Internal("stored SM3 is not hex")))?;
        let mut extra = vec![original_file_attribute(&original)?];
        let tsa = ServerTsa::new(ctx.pki.clone());
        let signer = seal.clone();
        let property = format!("document:{id};version:{}", row.version + 1);
        let signed = self
            .cpu(move || -> std::result::Result<Vec<u8>, DocError> {
                let prepared = doc_sign::prepare(&pdf, &opts)?;
                // The GB/T 38540 seal signature over the same bytes the CMS covers.
                let ses = gm_pki::seal::sign_with_seal(
                    &gm_pki::seal::SealSignParams {
                        seal: &signer.seseal,
                        time,
                        data_hash: &prepared.digest_sm3(),
                        property_info: &property,
                    },
                    &signer.cert,
                    &signer.signer,
                )
                .map_err(Error::from)?;
                extra.push(gm_pki::cms::ExtraAttribute {
                    oid: ses_signature_oid()?,
                    value_der: ses,
                });
                let identity = doc_sign::SignerIdentity {
                    cert: &signer.cert,
                    chain: &signer.chain,
                    key: &signer.signer,
                };
                let cms = doc_sign::build_cms_with(&prepared, &identity, Some(&tsa), &extra)?;
                Ok(prepared.finish(&cms)?)
            })
            .await??;
        let ltv = self
            .ltv_material(&ctx.db, &ctx.pki, &seal.cert, "seal")
            .await?;
        let signed = self.cpu(move || doc_sign::add_dss(&signed, &ltv)).await??;
        let size = signed.len();
        let sm3 = self.store.put(signed).await?;
        let signer_name = seal
            .cert
            .subject_attr(gm_pki::oid::AT_COMMON_NAME)
            .unwrap_or_else(|| seal.cert.subject_string());
        let version = ctx
            .db
            .add_signed_version(
                id,
                row.version,
                &db::NewVersion {
                    kind: "signed",
                    sm3: &sm3,
                    size,
                    media_type: FileKind::Pdf.media_type(),
                    filename: &row.filename,
                },
                (&signer_name, &seal.cert.serial_hex()),
                actor,
                crate::pki::unix_ms(time),
            )
            .await?
            .ok_or(DocError::Conflict)?;
        let doc = ctx.db.document(id).await?.ok_or(DocError::NotFound)?;
        Ok((
            doc,
            SignedInfo {
                version,
                sm3,
                signer: signer_name,
                cert_serial: seal.cert.serial_hex(),
            },
        ))
    }

    /// First step of a signature by an external key (a doctor's two-party SM2 key, a
    /// patient's event certificate): the placeholder PDF and the CMS signed attributes
    /// (with the original file's SM3) for the key holder to sign.
    pub fn prepare_external(
        pdf: &[u8],
        opts: &PdfSignOptions,
        cert: &ParsedCertificate,
        chain: &[ParsedCertificate],
        original_sm3: &[u8; 32],
    ) -> std::result::Result<ExternalSigning, DocError> {
        let prepared = doc_sign::prepare(pdf, opts)?;
        let cms = doc_sign::external_cms(
            &prepared,
            cert,
            chain,
            &[original_file_attribute(original_sm3)?],
        )?;
        Ok(ExternalSigning { prepared, cms })
    }

    /// Second step: embeds the external DER SM2 signature over
    /// [`ExternalSigning::to_be_signed`] (verified first, default SM2 ID) with a signature time
    /// stamp from `tsa`; returns the signed PDF (B-T; add the DSS with [`doc_sign::add_dss`]).
    pub fn complete_external(
        pending: ExternalSigning,
        signature_der: &[u8],
        tsa: Option<&dyn TimestampAuthority>,
    ) -> std::result::Result<Vec<u8>, DocError> {
        let cms = doc_sign::complete_cms(pending.cms, signature_der, gm_pki::DEFAULT_DISTID, tsa)?;
        Ok(pending.prepared.finish(&cms)?)
    }

    /// Validation material for a PDF signed by `cert` (issued by CA `ca`): the chain, the TSA
    /// and OCSP responder certificates, a fresh OCSP response for `cert`, the CRLs of `ca` and
    /// of the root.
    pub async fn ltv_material(
        &self,
        db: &Db,
        pki: &Pki,
        cert: &ParsedCertificate,
        ca: &str,
    ) -> Result<LtvMaterial> {
        let mut m = LtvMaterial::default();
        m.certs.push(cert.der().to_vec());
        for name in [ca, "root", "tsa", &format!("ocsp-{ca}")] {
            if let Some(a) = pki.authority(name) {
                m.certs.push(a.cert.der().to_vec());
            }
        }
        if let Some(issuer) = pki.authority(ca) {
            let id = gm_pki::ocsp::CertId::for_cert(cert, &issuer.cert, gm_pki::cms::HashAlg::Sm3)?;
            let req = gm_pki::ocsp::build_request(&[id], None)?;
            let resp = pki.ocsp(db, req).await;
            if gm_pki::ocsp::parse_response(&resp)
                .is_ok_and(|r| r.status == gm_pki::ocsp::ResponseStatus::Successful)
            {
                m.ocsps.push(resp);
            }
        }
        for name in [ca, "root"] {
            if let Some(crl) = pki.crl(db, name).await? {
                m.crls.push(crl);
            }
        }
        Ok(m)
    }
}

/// What a signing request needs from the server.
#[derive(Debug, Clone)]
pub struct SignContext {
    /// Database.
    pub db: Db,
    /// PKI services (seal CA, TSA, OCSP, CRLs).
    pub pki: Arc<Pki>,
    /// The crypto device.
    pub device: Arc<dyn crypto_device::CryptoDevice>,
    /// Organisation name (O= of the seal certificate).
    pub organisation: String,
}

/// The new signed version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignedInfo {
    /// Version number.
    pub version: i64,
    /// Its SM3.
    pub sm3: String,
    /// Signer name.
    pub signer: String,
    /// Certificate serial.
    pub cert_serial: String,
}

/// OID of the signed attribute that records the SM3 of the file as uploaded (before any
/// conversion to PDF): `1.2.156.112233.7.1` under the project's private arc (the same arc as
/// the default TSA policy 1.2.156.112233.2.1). Value: `OCTET STRING` of the 32-byte SM3.
pub const ORIGINAL_FILE_SM3_OID: &str = "1.2.156.112233.7.1";

/// OID of the signed attribute that carries the GB/T 38540 `SES_Signature` (DER, the
/// attribute's one value) made with the organisation seal over the same byte ranges:
/// `1.2.156.112233.7.2` (project arc, like [`ORIGINAL_FILE_SM3_OID`]).
pub const SES_SIGNATURE_OID: &str = "1.2.156.112233.7.2";

fn ses_signature_oid() -> Result<const_oid::ObjectIdentifier> {
    SES_SIGNATURE_OID
        .parse()
        .map_err(|_| Error::Internal("SES_Signature OID"))
}

/// The organisation's SESeal: made by the seal CA (its key in the device) for the seal
/// certificate `cert`, valid as long as the certificate.
async fn make_org_seseal(
    pki: &Pki,
    cert: &ParsedCertificate,
    org: &str,
    picture: &[u8],
) -> Result<Vec<u8>> {
    let maker = pki
        .authority("seal")
        .cloned()
        .ok_or(Error::Internal("no seal CA"))?;
    let info = gm_pki::seal::SealInfo {
        vid: "yiqian".into(),
        es_id: format!("yiqian-org-{}", cert.serial_hex()),
        seal_type: 1,
        name: format!("{org} 电子签章"),
        cert_list: gm_pki::seal::CertList::Certs(vec![cert.der().to_vec()]),
        created: now_seconds(),
        valid_start: cert.not_before(),
        valid_end: cert.not_after(),
        picture: gm_pki::seal::SealPicture {
            kind: "png".into(),
            data: picture.to_vec(),
            width_mm: 40,
            height_mm: 40,
        },
        ext_datas: Vec::new(),
    };
    blocking(move || gm_pki::seal::make_seal(&info, &maker.cert, &maker.signer))
        .await?
        .map_err(Error::from)
}

/// The original-file SM3 as a CMS signed attribute.
pub fn original_file_attribute(sm3: &[u8; 32]) -> Result<gm_pki::cms::ExtraAttribute> {
    sm3_attribute(ORIGINAL_FILE_SM3_OID, sm3)
}

/// A CMS signed attribute `oid` whose one value is `OCTET STRING` of a 32-byte SM3.
pub fn sm3_attribute(oid: &str, sm3: &[u8; 32]) -> Result<gm_pki::cms::ExtraAttribute> {
    use der::Encode;
    let value = der::asn1::OctetString::new(sm3.to_vec())
        .and_then(|o| o.to_der())
        .map_err(|_| Error::Internal("octet string"))?;
    Ok(gm_pki::cms::ExtraAttribute {
        oid: oid.parse().map_err(|_| Error::Internal("attribute OID"))?,
        value_der: value,
    })
}

/// `report.docx` → `report.pdf`.
fn pdf_name(filename: &str) -> String {
    let stem = filename.rsplit_once('.').map_or(filename, |(s, _)| s);
    format!("{stem}.pdf")
}

/// The local TSA as doc-sign's [`TimestampAuthority`]: tokens are granted and recorded by
/// [`Pki::timestamp`] exactly as for `POST /tsa`.
pub struct ServerTsa {
    pki: Arc<Pki>,
    handle: Handle,
}

impl std::fmt::Debug for ServerTsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTsa").finish_non_exhaustive()
    }
}

impl ServerTsa {
    /// Must be created inside the runtime; used from blocking threads.
    pub fn new(pki: Arc<Pki>) -> Self {
        Self {
            pki,
            handle: Handle::current(),
        }
    }
}

impl TimestampAuthority for ServerTsa {
    fn timestamp(&self, imprint_sm3: &[u8; 32]) -> doc_sign::Result<Vec<u8>> {
        let req =
            gm_pki::tsp::build_request(gm_pki::cms::HashAlg::Sm3, imprint_sm3, None, None, true)?;
        let resp = self.handle.block_on(self.pki.timestamp(req));
        doc_sign::timestamp::token_from_response(&resp)
    }
}

/// The signing time: whole seconds, as certificates and tokens carry it.
pub fn signing_time() -> SystemTime {
    now_seconds()
}

/// The placement with the seal picture and a text block (signer, time, serial) as its layers.
pub fn placement_for(
    spec: &Placement,
    seal: &SealIdentity,
    time: SystemTime,
) -> std::result::Result<Placement, DocError> {
    let layers = vec![
        doc_sign::Layer::Seal(doc_sign::SignatureImage::from_png(&seal.picture)?),
        doc_sign::Layer::Text(doc_sign::TextBlock::signer_time_serial(&seal.cert, time)),
    ];
    let mut p = spec.clone();
    match &mut p {
        Placement::Visible(app) => app.layers = layers,
        Placement::Keyword { layers: l, .. } | Placement::Field { layers: l, .. } => *l = layers,
        _ => {}
    }
    Ok(p)
}

/// Signing options for the organisation seal.
pub fn seal_options(req: &SignRequest, placement: Placement, time: SystemTime) -> PdfSignOptions {
    let mut o = PdfSignOptions::new(time);
    o.reason.clone_from(&req.reason);
    o.location.clone_from(&req.location);
    o.contents_reserve = CONTENTS_RESERVE;
    o.placement = placement;
    o
}

/// How long a single signing job may take before the request is answered 503.
pub const SIGN_TIMEOUT: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;
    use gm_pki::{CertificateParams, DnBuilder, Sm2Signer, SoftwareSigner};
    use std::time::{Duration, UNIX_EPOCH};

    fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
        rand_core::UnwrapErr(getrandom::SysRng)
    }

    /// The two-step flow the co-signing and patient services use: the key holder signs
    /// `to_be_signed` elsewhere; a wrong signature is refused, the right one verifies.
    #[test]
    fn external_signer_two_steps() {
        let now = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let key = SoftwareSigner::generate(&mut rng()).unwrap();
        let dn = DnBuilder::new().common_name("张医生").build().unwrap();
        let params = CertificateParams::new(
            dn,
            key.public_key(),
            now - Duration::from_secs(60),
            now + Duration::from_secs(86_400),
        );
        let cert = gm_pki::cert::issue_certificate(&params, None, &key, &mut rng()).unwrap();
        let png = doc_sign::pdf::appearance::round_seal_png(64).unwrap();
        let img = doc_sign::pdf::image::PageImage::from_png(&png).unwrap();
        let pdf = doc_sign::pdf::image::image_pdf(&img, 72.0, 72.0).unwrap();
        let original = gm_pki::signer::sm3(b"the uploaded DOCX");
        let opts = PdfSignOptions::new(now);

        let pending = Documents::prepare_external(&pdf, &opts, &cert, &[], &original).unwrap();
        let other = SoftwareSigner::generate(&mut rng()).unwrap();
        let forged = gm_pki::signer::sign_der(&other, pending.to_be_signed()).unwrap();
        assert!(Documents::complete_external(pending, &forged, None).is_err());

        let pending = Documents::prepare_external(&pdf, &opts, &cert, &[], &original).unwrap();
        let sig = gm_pki::signer::sign_der(&key, pending.to_be_signed()).unwrap();
        let signed = Documents::complete_external(pending, &sig, None).unwrap();
        let report = doc_sign::verify_pdf(&signed).unwrap();
        assert!(report.ok(), "{report:?}");
        assert_eq!(
            report::original_sm3_of(&report.signatures[0]),
            Some(hex::encode(original))
        );
    }
}
