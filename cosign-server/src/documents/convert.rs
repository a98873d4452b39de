//! Converting uploads to PDF.
//!
//! * DOC/DOCX: LibreOffice headless (`soffice --convert-to pdf`, Debian `libreoffice-writer-nogui`)
//!   in a bounded pool: at most `converters` processes at once, each with its own profile
//!   directory (`-env:UserInstallation`), in its own process group, killed (the whole group)
//!   when it exceeds the timeout. DOCX files are checked for zip bombs first: the central
//!   directory's sizes and compression ratios, then every entry is inflated with a hard cap
//!   (a directory that lies about sizes is caught too).
//! * PDF page → PNG (the patient page's document view): poppler's `pdftoppm` (Debian
//!   `poppler-utils`) in the same kind of bounded pool (own semaphore, process group killed on
//!   timeout, output size capped), see [`Converter::pdf_page_png`].
//! * JPEG/PNG: a one-page PDF whose page is the image at its own resolution (dpi from the
//!   file, 96 if it has none); JPEG is embedded as is (DCTDecode), PNG losslessly.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::Mutex;

use super::DocError;
use crate::error::Error;

/// Converter limits.
#[derive(Debug, Clone)]
pub struct ConvertSettings {
    /// The LibreOffice binary.
    pub soffice: PathBuf,
    /// Converter processes at once.
    pub converters: usize,
    /// Per-conversion limit; the process group is killed after it.
    pub timeout: Duration,
    /// Total uncompressed size allowed inside a DOCX.
    pub max_uncompressed: u64,
    /// Largest compression ratio allowed for one DOCX entry.
    pub max_ratio: u64,
    /// Most entries in a DOCX.
    pub max_entries: usize,
    /// Largest PDF a conversion may produce.
    pub max_output: u64,
    /// poppler's page renderer.
    pub pdftoppm: PathBuf,
    /// Page renderings at once.
    pub renderers: usize,
    /// Per-rendering limit.
    pub render_timeout: Duration,
}

impl Default for ConvertSettings {
    fn default() -> Self {
        Self {
            soffice: PathBuf::from("soffice"),
            converters: 2,
            timeout: Duration::from_secs(60),
            max_uncompressed: 256 * 1024 * 1024,
            max_ratio: 200,
            max_entries: 5000,
            max_output: 256 * 1024 * 1024,
            pdftoppm: PathBuf::from("pdftoppm"),
            renderers: 2,
            render_timeout: Duration::from_secs(30),
        }
    }
}

/// The bounded LibreOffice pool: each slot is a profile directory used by one process at a time.
#[derive(Debug)]
pub struct Converter {
    settings: ConvertSettings,
    work: PathBuf,
    free: Mutex<Vec<PathBuf>>,
    slots: tokio::sync::Semaphore,
    render_slots: tokio::sync::Semaphore,
}

fn bad(m: impl Into<String>) -> DocError {
    DocError::Invalid(m.into())
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// One central-directory entry.
struct Entry {
    name: String,
    method: u16,
    compressed: u64,
    uncompressed: u64,
    local_offset: usize,
}

/// Reads the ZIP central directory (APPNOTE 4.3.12/4.3.16); ZIP64 and multi-disk archives are
/// refused (an Office document never needs them).
fn central_directory(zip: &[u8], max_entries: usize) -> Result<Vec<Entry>, DocError> {
    let tail_from = zip.len().saturating_sub(22 + 65_535);
    let tail = zip.get(tail_from..).unwrap_or_default();
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail.get(i..i + 4) == Some(b"PK\x05\x06"))
        .map(|i| tail_from + i)
        .ok_or_else(|| bad("not a ZIP archive (no end of central directory)"))?;
    let count = usize::from(u16_at(zip, eocd + 10).ok_or_else(|| bad("truncated ZIP"))?);
    let cd_size = u32_at(zip, eocd + 12).ok_or_else(|| bad("truncated ZIP"))?;
    let cd_off = u32_at(zip, eocd + 16).ok_or_else(|| bad("truncated ZIP"))?;
    if u16_at(zip, eocd + 4) != Some(0) || count == 0xFFFF || cd_off == u32::MAX {
        return Err(bad("multi-disk or ZIP64 archives are not accepted"));
    }
    if count > max_entries {
        return Err(bad(format!(
            "the ZIP has {count} entries (at most {max_entries})"
        )));
    }
    let cd_off = usize::try_from(cd_off).map_err(|_| bad("ZIP offset"))?;
    let cd_end = cd_off
        .checked_add(usize::try_from(cd_size).map_err(|_| bad("ZIP size"))?)
        .filter(|&e| e <= eocd)
        .ok_or_else(|| bad("the ZIP central directory lies outside the file"))?;
    let mut out = Vec::with_capacity(count);
    let mut at = cd_off;
    for _ in 0..count {
        if at + 46 > cd_end || zip.get(at..at + 4) != Some(b"PK\x01\x02") {
            return Err(bad("broken ZIP central directory"));
        }
        let field = |o: usize| u32_at(zip, at + o).ok_or_else(|| bad("truncated ZIP"));
        let short = |o: usize| u16_at(zip, at + o).ok_or_else(|| bad("truncated ZIP"));
        let method = short(10)?;
        let compressed = field(20)?;
        let uncompressed = field(24)?;
        let name_len = usize::from(short(28)?);
        let extra_len = usize::from(short(30)?);
        let comment_len = usize::from(short(32)?);
        let local = field(42)?;
        if compressed == u32::MAX || uncompressed == u32::MAX || local == u32::MAX {
            return Err(bad("ZIP64 entries are not accepted"));
        }
        let name = zip
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(|| bad("truncated ZIP"))?;
        out.push(Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            method,
            compressed: u64::from(compressed),
            uncompressed: u64::from(uncompressed),
            local_offset: usize::try_from(local).map_err(|_| bad("ZIP offset"))?,
        });
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(out)
}

/// Zip-bomb and sanity checks of a DOCX before LibreOffice sees it: sizes and ratios from the
/// central directory, then each entry inflated with a cap at its declared size.
pub fn check_docx(zip: &[u8], s: &ConvertSettings) -> Result<(), DocError> {
    let entries = central_directory(zip, s.max_entries)?;
    if !entries.iter().any(|e| e.name == "word/document.xml") {
        return Err(DocError::UnsupportedType(
            "a ZIP file that is not a Word document (no word/document.xml)".into(),
        ));
    }
    let mut total: u64 = 0;
    for e in &entries {
        total = total.saturating_add(e.uncompressed);
        if total > s.max_uncompressed {
            return Err(bad(format!(
                "zip bomb: more than {} bytes uncompressed",
                s.max_uncompressed
            )));
        }
        if e.uncompressed > 1024 * 1024 && e.uncompressed / e.compressed.max(1) > s.max_ratio {
            return Err(bad(format!(
                "zip bomb: entry {} expands {}x",
                e.name,
                e.uncompressed / e.compressed.max(1)
            )));
        }
    }
    for e in &entries {
        inflate_checked(zip, e)?;
    }
    Ok(())
}

/// Inflates one entry, refusing output beyond its declared uncompressed size.
fn inflate_checked(zip: &[u8], e: &Entry) -> Result<(), DocError> {
    let at = e.local_offset;
    if zip.get(at..at + 4) != Some(b"PK\x03\x04") {
        return Err(bad("broken ZIP local header"));
    }
    let name_len = usize::from(u16_at(zip, at + 26).ok_or_else(|| bad("truncated ZIP"))?);
    let extra_len = usize::from(u16_at(zip, at + 28).ok_or_else(|| bad("truncated ZIP"))?);
    let start = at + 30 + name_len + extra_len;
    let len = usize::try_from(e.compressed).map_err(|_| bad("ZIP size"))?;
    let data = zip
        .get(start..start.saturating_add(len))
        .ok_or_else(|| bad("a ZIP entry lies outside the file"))?;
    let produced = match e.method {
        0 => data.len() as u64,
        8 => {
            let mut dec = flate2::read::DeflateDecoder::new(data).take(e.uncompressed + 1);
            std::io::copy(&mut dec, &mut std::io::sink())
                .map_err(|_| bad(format!("ZIP entry {} does not inflate", e.name)))?
        }
        m => return Err(bad(format!("ZIP compression method {m} is not accepted"))),
    };
    if produced != e.uncompressed {
        return Err(bad(format!(
            "zip bomb or corrupt ZIP: entry {} is not the size its directory says",
            e.name
        )));
    }
    Ok(())
}

impl Converter {
    /// A pool with its profile directories under `work` (created).
    pub fn new(work: &Path, settings: ConvertSettings) -> Result<Self, Error> {
        let n = settings.converters.max(1);
        let mut free = Vec::with_capacity(n);
        for i in 0..n {
            let dir = work.join(format!("profile-{i}"));
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            free.push(dir);
        }
        Ok(Self {
            render_slots: tokio::sync::Semaphore::new(settings.renderers.max(1)),
            slots: tokio::sync::Semaphore::new(n),
            free: Mutex::new(free),
            work: work.to_owned(),
            settings,
        })
    }

    /// Limits in force.
    pub fn settings(&self) -> &ConvertSettings {
        &self.settings
    }

    /// DOC/DOCX → PDF with LibreOffice (waits for a free converter).
    pub async fn office_to_pdf(&self, input: &[u8], ext: &str) -> Result<Vec<u8>, DocError> {
        let _permit = self
            .slots
            .acquire()
            .await
            .map_err(|_| DocError::Server(Error::Internal("converter pool closed")))?;
        let profile = self
            .free
            .lock()
            .await
            .pop()
            .ok_or(DocError::Server(Error::Internal(
                "no free converter profile",
            )))?;
        let result = self.run_soffice(&profile, input, ext).await;
        self.free.lock().await.push(profile);
        result
    }

    async fn run_soffice(
        &self,
        profile: &Path,
        input: &[u8],
        ext: &str,
    ) -> Result<Vec<u8>, DocError> {
        let job = self
            .work
            .join(format!("job-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&job).map_err(|e| Error::io(&job, e))?;
        let result = self.convert_in(&job, profile, input, ext).await;
        let _ = std::fs::remove_dir_all(&job);
        result
    }

    async fn convert_in(
        &self,
        job: &Path,
        profile: &Path,
        input: &[u8],
        ext: &str,
    ) -> Result<Vec<u8>, DocError> {
        let src = job.join(format!("in.{ext}"));
        std::fs::write(&src, input).map_err(|e| Error::io(&src, e))?;
        let mut cmd = tokio::process::Command::new(&self.settings.soffice);
        cmd.arg(format!(
            "-env:UserInstallation=file://{}",
            profile.display()
        ))
        .args([
            "--headless",
            "--invisible",
            "--norestore",
            "--nolockcheck",
            "--nodefault",
            "--nologo",
            "--convert-to",
            "pdf:writer_pdf_Export",
            "--outdir",
        ])
        .arg(job)
        .arg(&src)
        .env("HOME", job);
        run_bounded(cmd, self.settings.timeout, "LibreOffice").await?;
        let out = job.join("in.pdf");
        let len = std::fs::metadata(&out)
            .map_err(|_| {
                bad("LibreOffice could not convert the file (corrupt or not a Word document)")
            })?
            .len();
        if len > self.settings.max_output {
            return Err(bad("the converted PDF is too large"));
        }
        std::fs::read(&out).map_err(|e| DocError::Server(Error::io(&out, e)))
    }

    /// Page `page` (from 1) of `pdf` as a PNG `width` pixels wide (height to scale), rendered
    /// by `pdftoppm` (waits for a free renderer; killed after `render_timeout`).
    pub async fn pdf_page_png(
        &self,
        pdf: &[u8],
        page: u32,
        width: u32,
    ) -> Result<Vec<u8>, DocError> {
        let _permit = self
            .render_slots
            .acquire()
            .await
            .map_err(|_| DocError::Server(Error::Internal("renderer pool closed")))?;
        let job = self
            .work
            .join(format!("render-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&job).map_err(|e| Error::io(&job, e))?;
        let result = self.render_in(&job, pdf, page, width).await;
        let _ = std::fs::remove_dir_all(&job);
        result
    }

    async fn render_in(
        &self,
        job: &Path,
        pdf: &[u8],
        page: u32,
        width: u32,
    ) -> Result<Vec<u8>, DocError> {
        let src = job.join("in.pdf");
        std::fs::write(&src, pdf).map_err(|e| Error::io(&src, e))?;
        let mut cmd = tokio::process::Command::new(&self.settings.pdftoppm);
        let (page, width) = (page.to_string(), width.to_string());
        cmd.args([
            "-png",
            "-singlefile",
            "-f",
            &page,
            "-l",
            &page,
            "-scale-to-x",
            &width,
        ])
        .args(["-scale-to-y", "-1"])
        .arg(&src)
        .arg(job.join("out"))
        .env("HOME", job);
        run_bounded(cmd, self.settings.render_timeout, "pdftoppm").await?;
        let out = job.join("out.png");
        let len = std::fs::metadata(&out)
            .map_err(|_| bad("the page could not be rendered"))?
            .len();
        if len > 64 * 1024 * 1024 {
            return Err(bad("the rendered page is too large"));
        }
        std::fs::read(&out).map_err(|e| DocError::Server(Error::io(&out, e)))
    }
}

/// Runs an external tool in its own process group with no stdio, killing the whole group when
/// it exceeds `timeout` (a refusal: the input made it hang) and after it exits (helpers it
/// left behind). Its output files are the caller's business.
async fn run_bounded(
    mut cmd: tokio::process::Command,
    timeout: Duration,
    what: &'static str,
) -> Result<(), DocError> {
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        tracing::error!(error = %e, tool = what, "cannot start a converter");
        DocError::Server(Error::Internal("a document converter cannot be started"))
    })?;
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, tool = what, "waiting for a converter failed");
            return Err(DocError::Server(Error::Internal(
                "document converter failed",
            )));
        }
        Err(_) => {
            kill_group(pid).await;
            let _ = child.kill().await;
            return Err(bad(format!(
                "conversion timed out after {} s ({what})",
                timeout.as_secs()
            )));
        }
    }
    kill_group(pid).await;
    Ok(())
}

/// Kills the process group `pid` (the converter and anything it started).
async fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid {
        let _ = tokio::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await;
    }
}

/// Resolution of an image in dots per inch (PNG pHYs, JPEG JFIF density), 96 if unknown.
fn dpi_or_default(dpi: Option<(f32, f32)>) -> (f32, f32) {
    match dpi {
        Some((x, y)) if (10.0..=10_000.0).contains(&x) && (10.0..=10_000.0).contains(&y) => (x, y),
        _ => (96.0, 96.0),
    }
}

/// JPEG/PNG → one-page PDF, the page exactly the image at its resolution.
pub fn image_to_pdf(bytes: &[u8], kind: super::FileKind) -> Result<Vec<u8>, DocError> {
    let img = match kind {
        super::FileKind::Jpeg => doc_sign::pdf::image::PageImage::from_jpeg(bytes)?,
        super::FileKind::Png => doc_sign::pdf::image::PageImage::from_png(bytes)?,
        _ => return Err(DocError::UnsupportedType("not an image".into())),
    };
    let (dx, dy) = dpi_or_default(img.dpi());
    Ok(doc_sign::pdf::image::image_pdf(&img, dx, dy)?)
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test archives are tiny
mod tests {
    use super::*;

    /// A stored (method 0) ZIP with the given entries, written by hand.
    fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cd = Vec::new();
        for (name, data) in entries {
            let off = out.len() as u32;
            let crc = 0u32;
            out.extend_from_slice(b"PK\x03\x04");
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            cd.extend_from_slice(b"PK\x01\x02");
            cd.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            cd.extend_from_slice(&crc.to_le_bytes());
            cd.extend_from_slice(&(data.len() as u32).to_le_bytes());
            cd.extend_from_slice(&(data.len() as u32).to_le_bytes());
            cd.extend_from_slice(&(name.len() as u16).to_le_bytes());
            cd.extend_from_slice(&[0; 12]);
            cd.extend_from_slice(&off.to_le_bytes());
            cd.extend_from_slice(name.as_bytes());
        }
        let cd_off = out.len() as u32;
        out.extend_from_slice(&cd);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_off.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    #[test]
    fn docx_checks() {
        let s = ConvertSettings::default();
        let ok = zip(&[
            ("[Content_Types].xml", b"<x/>"),
            ("word/document.xml", b"<w/>"),
        ]);
        check_docx(&ok, &s).unwrap();
        let not_word = zip(&[("a.txt", b"hi")]);
        assert!(matches!(
            check_docx(&not_word, &s),
            Err(DocError::UnsupportedType(_))
        ));
        // A directory that claims a size the data does not have.
        let mut lying = ok.clone();
        let cd = lying.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
        lying[cd + 24] = 0x40;
        assert!(check_docx(&lying, &s).is_err());
        // Too much declared in total.
        let small = ConvertSettings {
            max_uncompressed: 3,
            ..ConvertSettings::default()
        };
        assert!(check_docx(&ok, &small).is_err());
        for garbage in [&b""[..], b"PK\x03\x04", b"PK\x05\x06", &ok[..ok.len() - 5]] {
            assert!(check_docx(garbage, &s).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn docx_check_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = check_docx(&bytes, &ConvertSettings::default());
        }

        #[test]
        fn docx_check_survives_bit_flips(i in 0usize..200, bit in 0u8..8) {
            let ok = zip(&[("word/document.xml", b"<w:document/>")]);
            let mut b = ok.clone();
            let at = i % b.len();
            b[at] ^= 1 << bit;
            let _ = check_docx(&b, &ConvertSettings::default());
        }
    }
}
