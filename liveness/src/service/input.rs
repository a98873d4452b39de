//! Request bodies: JSON with base64 images or multipart/form-data with file parts of the same
//! names (api.md). The body is read whole, bounded, before anything else; extractor rejections
//! never reach the caller as plain text: every failure here is an [`ApiError`].

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::challenge::{MAX_FRAMES_PER_STEP, MAX_STEPS};
use super::error::ApiError;

/// Whole request body, bytes (api.md: 40 MB).
pub const MAX_BODY: usize = 40 * 1024 * 1024;
/// Most multipart parts: a challenge, 4 steps of 15 frames, and some slack for the caller's
/// own fields (ignored).
const MAX_PARTS: usize = 1 + MAX_STEPS * MAX_FRAMES_PER_STEP + 8;
/// Longest part name, characters.
const MAX_NAME: usize = 64;

/// One liveness step as sent: the action it claims (JSON only) and its frames.
pub type Step = (Option<String>, Vec<Bytes>);

/// One multipart part: its name and bytes.
#[derive(Debug, Clone)]
pub struct Part {
    /// The form field name.
    pub name: String,
    /// The content.
    pub data: Bytes,
}

/// A request body, read and classified.
#[derive(Debug)]
pub enum Upload {
    /// `application/json`.
    Json(Bytes),
    /// `multipart/form-data`, parts in order.
    Multipart(Vec<Part>),
}

fn malformed(what: &str) -> ApiError {
    ApiError::invalid(
        format!("请求格式不正确：{what}。"),
        format!("malformed request: {what}"),
    )
}

impl Upload {
    /// Reads a request's body (at most [`MAX_BODY`] bytes) and parses multipart parts.
    pub async fn read(req: Request) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        // Refused from the header alone: the body is never read.
        if declared.is_some_and(|n| n > MAX_BODY as u64) {
            return Err(ApiError::body_too_large(MAX_BODY));
        }
        let ctype = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        // The only read error with a caller still listening is the length limit (a chunked
        // body that grows past it).
        let bytes = axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|_| ApiError::body_too_large(MAX_BODY))?;
        if ctype.starts_with("application/json") {
            return Ok(Self::Json(bytes));
        }
        if !ctype.starts_with("multipart/form-data") {
            return Err(ApiError::invalid(
                "请以 JSON（application/json）或 multipart/form-data 提交。",
                "send application/json or multipart/form-data",
            ));
        }
        let req = Request::from_parts(parts, Body::from(bytes));
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|_| malformed("multipart 边界缺失"))?;
        let mut out = Vec::new();
        loop {
            let field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => return Err(malformed("multipart 内容无效")),
            };
            if out.len() >= MAX_PARTS {
                return Err(malformed("multipart 部分过多"));
            }
            let name = field.name().unwrap_or("").to_owned();
            if name.is_empty() || name.chars().count() > MAX_NAME {
                return Err(malformed("multipart 部分缺少名称"));
            }
            let data = field
                .bytes()
                .await
                .map_err(|_| malformed("multipart 内容无效"))?;
            out.push(Part { name, data });
        }
        Ok(Self::Multipart(out))
    }

    /// The images named `names` (JSON base64 fields or file parts), each exactly once.
    pub fn images(&self, names: &[&str]) -> Result<Vec<Bytes>, ApiError> {
        match self {
            Self::Json(body) => {
                let map: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_slice(body).map_err(|_| malformed("JSON 无效"))?;
                names
                    .iter()
                    .map(|n| match map.get(*n) {
                        Some(serde_json::Value::String(s)) => base64_image(n, s),
                        Some(_) => Err(malformed(&format!("字段 {n} 应为 base64 字符串"))),
                        None => Err(missing(n)),
                    })
                    .collect()
            }
            Self::Multipart(parts) => names
                .iter()
                .map(|n| {
                    let mut it = parts.iter().filter(|p| p.name == *n);
                    match (it.next(), it.next()) {
                        (Some(p), None) => Ok(p.data.clone()),
                        (None, _) => Err(missing(n)),
                        (Some(_), Some(_)) => Err(malformed(&format!("字段 {n} 重复"))),
                    }
                })
                .collect(),
        }
    }

    /// A liveness check: the challenge token and each step's (claimed action, frames).
    pub fn liveness(&self) -> Result<(String, Vec<Step>), ApiError> {
        match self {
            Self::Json(body) => {
                let req: CheckJson =
                    serde_json::from_slice(body).map_err(|_| malformed("JSON 无效"))?;
                bound_steps(req.steps.len(), req.steps.iter().map(|s| s.frames.len()))?;
                let steps = req
                    .steps
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let frames = s
                            .frames
                            .iter()
                            .map(|f| base64_image(&format!("steps[{i}].frames"), f))
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok((Some(s.action), frames))
                    })
                    .collect::<Result<Vec<_>, ApiError>>()?;
                Ok((req.challenge, steps))
            }
            Self::Multipart(parts) => {
                let mut challenge = None;
                let mut steps: Vec<Vec<Bytes>> = Vec::new();
                for p in parts {
                    if p.name == "challenge" {
                        let t = std::str::from_utf8(&p.data)
                            .map_err(|_| malformed("challenge 不是文本"))?;
                        if challenge.replace(t.trim().to_owned()).is_some() {
                            return Err(malformed("字段 challenge 重复"));
                        }
                    } else if let Some(i) = p
                        .name
                        .strip_prefix("step")
                        .and_then(|n| n.parse::<usize>().ok())
                    {
                        if i >= MAX_STEPS {
                            return Err(too_many_steps());
                        }
                        if steps.len() <= i {
                            steps.resize(i + 1, Vec::new());
                        }
                        steps[i].push(p.data.clone());
                    }
                }
                bound_steps(steps.len(), steps.iter().map(Vec::len))?;
                if steps.iter().any(Vec::is_empty) {
                    return Err(malformed("步骤编号不连续"));
                }
                let challenge = challenge.ok_or_else(|| missing("challenge"))?;
                Ok((challenge, steps.into_iter().map(|f| (None, f)).collect()))
            }
        }
    }
}

#[derive(Deserialize)]
struct CheckJson {
    challenge: String,
    steps: Vec<StepJson>,
}

#[derive(Deserialize)]
struct StepJson {
    action: String,
    frames: Vec<String>,
}

fn missing(name: &str) -> ApiError {
    ApiError::invalid(
        format!("缺少字段 {name}。"),
        format!("missing field {name}"),
    )
}

fn too_many_steps() -> ApiError {
    ApiError::invalid(
        format!("步骤过多：最多 {MAX_STEPS} 步。"),
        format!("too many steps: at most {MAX_STEPS}"),
    )
}

fn bound_steps(n: usize, frames: impl Iterator<Item = usize>) -> Result<(), ApiError> {
    if n > MAX_STEPS {
        return Err(too_many_steps());
    }
    for f in frames {
        if f > MAX_FRAMES_PER_STEP {
            return Err(ApiError::invalid(
                format!("每步最多 {MAX_FRAMES_PER_STEP} 帧。"),
                format!("at most {MAX_FRAMES_PER_STEP} frames a step"),
            ));
        }
        if f == 0 {
            return Err(ApiError::invalid(
                "有步骤没有图像帧。",
                "a step has no frames",
            ));
        }
    }
    Ok(())
}

/// Standard base64 (a `data:image/...;base64,` prefix is tolerated: browsers produce it).
fn base64_image(name: &str, s: &str) -> Result<Bytes, ApiError> {
    let s = match s.split_once(";base64,") {
        Some((head, rest)) if head.starts_with("data:") => rest,
        _ => s,
    };
    STANDARD.decode(s.trim()).map(Bytes::from).map_err(|_| {
        ApiError::invalid(
            format!("字段 {name} 不是有效的 base64。"),
            format!("field {name} is not valid base64"),
        )
    })
}
