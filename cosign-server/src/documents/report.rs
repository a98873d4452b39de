//! Verification reports: machine-readable JSON, and a human one in Chinese (plain text for the
//! terminal, HTML for a browser or printing).

use std::fmt::Write as _;
use std::time::SystemTime;

use doc_sign::pdf::verify::LaterChanges;
use doc_sign::{PdfReport, SignatureReport};
use serde_json::{Value, json};

use crate::pki::unix_ms;

fn time_text(t: SystemTime) -> String {
    crate::clock::rfc3339(unix_ms(t))
}

fn later_code(c: &LaterChanges) -> &'static str {
    match c {
        LaterChanges::None => "none",
        LaterChanges::SignaturesAndFormsOnly => "signatures_and_forms_only",
        LaterChanges::AnnotationsAdded => "annotations_added",
        LaterChanges::Disallowed => "disallowed",
        _ => "other",
    }
}

fn later_zh(c: &LaterChanges) -> &'static str {
    match c {
        LaterChanges::None => "签名后文档未被修改",
        LaterChanges::SignaturesAndFormsOnly => "签名后仅追加了签名、表单域或长期验证数据（允许）",
        LaterChanges::AnnotationsAdded => "签名后追加了批注",
        LaterChanges::Disallowed => "签名后文档内容被修改（不允许）",
        _ => "签名后有其他修改",
    }
}

/// The extra signed attributes of a signature's CMS (those we add: original-file SM3, seal).
fn cms_extras(s: &SignatureReport) -> Option<Vec<gm_pki::cms::ExtraAttribute>> {
    gm_pki::cms::extra_signed_attributes(&s.cms).ok()
}

/// SM3 of a signature's byte ranges.
fn byte_range_sm3(s: &SignatureReport, pdf: &[u8]) -> Option<[u8; 32]> {
    let [a0, a1, b0, b1] = <[i64; 4]>::try_from(s.byte_range.as_slice()).ok()?;
    let part = |o: i64, l: i64| {
        let o = usize::try_from(o).ok()?;
        pdf.get(o..o.checked_add(usize::try_from(l).ok()?)?)
    };
    let mut v = part(a0, a1)?.to_vec();
    v.extend_from_slice(part(b0, b1)?);
    Some(gm_pki::signer::sm3(&v))
}

/// The SM3 of the original file recorded in a signature (our attribute), if any.
pub fn original_sm3_of(s: &SignatureReport) -> Option<String> {
    let oid: const_oid::ObjectIdentifier = super::ORIGINAL_FILE_SM3_OID.parse().ok()?;
    let v = cms_extras(s)?.into_iter().find(|a| a.oid == oid)?;
    // OCTET STRING of 32 bytes: 04 20 ‖ digest.
    let digest = v.value_der.strip_prefix(&[0x04, 0x20])?;
    (digest.len() == 32).then(|| hex::encode(digest))
}

/// The GB/T 38540 SES_Signature carried by a signature (DER), if any.
pub fn ses_signature_of(s: &SignatureReport) -> Option<Vec<u8>> {
    let oid: const_oid::ObjectIdentifier = super::SES_SIGNATURE_OID.parse().ok()?;
    Some(cms_extras(s)?.into_iter().find(|a| a.oid == oid)?.value_der)
}

/// The electronic-seal part of the report: the seal and its signature verify, and the
/// seal signature's dataHash is the SM3 of this signature's byte ranges.
fn seal_json(s: &SignatureReport, pdf: &[u8]) -> Value {
    let Some(der) = ses_signature_of(s) else {
        return Value::Null;
    };
    match gm_pki::seal::SealSignature::from_der(&der) {
        Err(e) => json!({ "valid": false, "error": e.to_string() }),
        Ok(sig) => {
            let expected = byte_range_sm3(s, pdf).unwrap_or_default();
            let checked = sig.verify(&expected);
            json!({
                "valid": checked.is_ok(),
                "error": checked.err().map(|e| e.to_string()),
                "seal_name": sig.seal.info.name,
                "seal_id": sig.seal.info.es_id,
                "seal_valid_until": time_text(sig.seal.info.valid_end),
                "property_info": sig.property_info,
                "time": time_text(sig.time),
            })
        }
    }
}

/// The JSON report.
pub fn to_json(report: &PdfReport, pdf: &[u8]) -> Value {
    let sigs: Vec<Value> = report
        .signatures
        .iter()
        .map(|s| {
            let cert = s.signer_cert.as_ref();
            json!({
                "field": s.field_name,
                "ok": s.ok(),
                "sub_filter": s.sub_filter,
                "byte_range": s.byte_range,
                "byte_range_ok": s.byte_range_ok,
                "covers_whole_file": s.covers_whole_file,
                "signed_revision_length": s.signed_revision_len,
                "digest_ok": s.digest_ok,
                "signature_ok": s.signature_ok,
                "signing_certificate_ok": s.signing_certificate_ok,
                "signer": cert.map(gm_pki::ParsedCertificate::subject_string),
                "signer_serial": cert.map(gm_pki::ParsedCertificate::serial_hex),
                "issuer": cert.map(gm_pki::ParsedCertificate::issuer_string),
                "claimed_time": s.claimed_time,
                "signing_time": s.signing_time.map(time_text),
                "timestamp": s.timestamp.as_ref().map(|t| json!({
                    "valid": t.valid,
                    "time": t.time.map(time_text),
                    "tsa": t.tsa,
                    "error": t.error,
                })),
                "certification": s.certification.map(|c| format!("{c:?}")),
                "later_changes": later_code(&s.later_changes),
                "change_notes": s.change_notes,
                "field_lock": s.field_lock.as_ref().map(|l| json!({
                    "action": l.action(),
                    "fields": l.fields(),
                })),
                "changed_fields": s.changed_fields,
                "locked_fields_changed": s.locked_fields_changed,
                "path": s.path.as_ref().map(|p| json!({
                    "valid": p.valid,
                    "chain": p.chain,
                    "at": time_text(p.at),
                    "error": p.error,
                })),
                "original_file_sm3": original_sm3_of(s),
                "electronic_seal": seal_json(s, pdf),
                "problems": s.problems,
            })
        })
        .collect();
    let seals_ok = sigs
        .iter()
        .all(|v| v["electronic_seal"].is_null() || v["electronic_seal"]["valid"] == true);
    json!({
        "ok": report.ok() && seals_ok,
        "file_length": report.file_len,
        "file_sm3": super::sm3_hex(pdf),
        "signature_count": report.signatures.len(),
        "signatures": sigs,
        "dss": report.dss.as_ref().map(|d| json!({
            "certificates": d.certs.len(),
            "ocsp_responses": d.ocsps.len(),
            "crls": d.crls.len(),
        })),
    })
}

fn yes(b: bool) -> &'static str {
    if b { "通过" } else { "未通过" }
}

/// Lines of the Chinese report (shared by the text and HTML forms).
fn lines_zh(report: &PdfReport, pdf: &[u8]) -> (String, Vec<(String, Vec<String>)>) {
    let head = if report.signatures.is_empty() {
        "结论：文档中没有签名。".to_owned()
    } else if report.ok() {
        format!("结论：全部 {} 个签名验证通过。", report.signatures.len())
    } else {
        format!(
            "结论：验证未通过（共 {} 个签名，{} 个有问题）。",
            report.signatures.len(),
            report.signatures.iter().filter(|s| !s.ok()).count()
        )
    };
    let mut sections = Vec::new();
    for (i, s) in report.signatures.iter().enumerate() {
        let mut l = Vec::new();
        l.push(format!("签名域：{}", s.field_name));
        if let Some(c) = &s.signer_cert {
            l.push(format!("签名人：{}", c.subject_string()));
            l.push(format!("证书序列号：{}", c.serial_hex()));
            l.push(format!("颁发者：{}", c.issuer_string()));
        }
        l.push(format!(
            "签名时间（声明）：{}",
            s.claimed_time.clone().unwrap_or_default()
        ));
        match &s.timestamp {
            Some(t) => l.push(format!(
                "时间戳：{}{}",
                yes(t.valid),
                t.time
                    .map(|x| format!("，时间 {}", time_text(x)))
                    .unwrap_or_default()
            )),
            None => l.push("时间戳：无".to_owned()),
        }
        l.push(format!("签名范围：{}", yes(s.byte_range_ok)));
        l.push(format!("文档摘要（SM3）：{}", yes(s.digest_ok)));
        l.push(format!("签名值：{}", yes(s.signature_ok)));
        if let Some(p) = &s.path {
            l.push(format!(
                "证书链：{}{}",
                yes(p.valid),
                p.error
                    .as_ref()
                    .map(|e| format!("（{e}）"))
                    .unwrap_or_default()
            ));
        }
        l.push(format!("修改情况：{}", later_zh(&s.later_changes)));
        for n in &s.change_notes {
            l.push(format!("  · {n}"));
        }
        if let Some(lock) = &s.field_lock {
            let scope = match lock.action() {
                "All" => "全部表单域".to_owned(),
                "Include" => format!("表单域 {}", lock.fields().join("、")),
                _ => format!("除 {} 以外的全部表单域", lock.fields().join("、")),
            };
            l.push(format!("锁定表单域（FieldMDP）：{scope}"));
            if s.locked_fields_changed.is_empty() {
                l.push("锁定的表单域签名后未被修改".to_owned());
            } else {
                l.push(format!(
                    "锁定的表单域签名后被修改（不允许）：{}",
                    s.locked_fields_changed.join("、")
                ));
            }
        }
        if let Some(o) = original_sm3_of(s) {
            l.push(format!("原始文件 SM3：{o}"));
        }
        let seal = seal_json(s, pdf);
        if !seal.is_null() {
            l.push(format!(
                "电子签章（GB/T 38540）：{}{}",
                yes(seal["valid"] == true),
                seal["seal_name"]
                    .as_str()
                    .map(|n| format!("，印章 {n}"))
                    .unwrap_or_default()
            ));
        }
        for p in &s.problems {
            l.push(format!("问题：{p}"));
        }
        sections.push((
            format!("签名 {}：{}", i + 1, if s.ok() { "有效" } else { "无效" }),
            l,
        ));
    }
    (head, sections)
}

/// Plain-text Chinese report.
pub fn to_text_zh(report: &PdfReport, pdf: &[u8]) -> String {
    let (head, sections) = lines_zh(report, pdf);
    let mut out = format!(
        "医签 文档签名验证报告\n文件大小：{} 字节\n文件 SM3：{}\n{head}\n",
        report.file_len,
        super::sm3_hex(pdf)
    );
    for (title, lines) in sections {
        let _ = writeln!(out, "\n{title}");
        for l in lines {
            let _ = writeln!(out, "  {l}");
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// HTML Chinese report (self-contained, printable).
pub fn to_html_zh(report: &PdfReport, pdf: &[u8]) -> String {
    let (head, sections) = lines_zh(report, pdf);
    let mut out = String::from(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>文档签名验证报告</title>\
         <style>body{font-family:sans-serif;max-width:48em;margin:2em auto}h2{font-size:1.1em}\
         .ok{color:#060}.bad{color:#b00}</style></head><body><h1>文档签名验证报告</h1>",
    );
    let class = if report.ok() { "ok" } else { "bad" };
    let _ = write!(
        out,
        "<p>文件大小：{} 字节<br>文件 SM3：<code>{}</code></p><p class=\"{class}\"><strong>{}</strong></p>",
        report.file_len,
        super::sm3_hex(pdf),
        esc(&head)
    );
    for (title, lines) in sections {
        let _ = write!(out, "<h2>{}</h2><ul>", esc(&title));
        for l in lines {
            let _ = write!(out, "<li>{}</li>", esc(&l));
        }
        out.push_str("</ul>");
    }
    out.push_str("</body></html>\n");
    out
}

/// The Chinese report as a PDF (A4, the glyphs used embedded from the machine's CJK font; see
/// `report_pdf`).
pub fn to_pdf_zh(
    report: &PdfReport,
    pdf: &[u8],
) -> Result<Vec<u8>, super::report_pdf::ReportPdfError> {
    use super::report_pdf::{Line, render};
    let (head, sections) = lines_zh(report, pdf);
    let black = (0.0, 0.0, 0.0);
    let line = |text: String, size: f32, rgb, indent: f32, space_before: f32| Line {
        text,
        size,
        rgb,
        indent,
        space_before,
    };
    let verdict_rgb = if report.ok() {
        (0.0, 0.4, 0.0)
    } else {
        (0.7, 0.0, 0.0)
    };
    let mut lines = vec![
        line("医签 文档签名验证报告".into(), 18.0, black, 0.0, 0.0),
        line(
            format!("文件大小：{} 字节", report.file_len),
            10.5,
            black,
            0.0,
            8.0,
        ),
        line(
            format!("文件 SM3：{}", super::sm3_hex(pdf)),
            10.5,
            black,
            0.0,
            0.0,
        ),
        line(head, 14.0, verdict_rgb, 0.0, 8.0),
    ];
    for (i, (title, ls)) in sections.into_iter().enumerate() {
        let rgb = if report.signatures.get(i).is_some_and(SignatureReport::ok) {
            (0.0, 0.4, 0.0)
        } else {
            (0.7, 0.0, 0.0)
        };
        lines.push(line(title, 12.5, rgb, 0.0, 10.0));
        for l in ls {
            lines.push(line(l, 10.0, black, 14.0, 0.0));
        }
    }
    render("文档签名验证报告", &lines)
}
