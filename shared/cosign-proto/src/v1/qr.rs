//! The `yiqian://` links a terminal shows as a QR code and the phone opens.
//!
//! * `yiqian://sign?v=1&r=<request id>&n=<one-time nonce>&s=<server base URL>` — scan to sign;
//! * `yiqian://activate?v=1&u=<staff id>&c=<activation code>&s=<server base URL>` — enrol a phone.
//!
//! Values are percent-encoded (RFC 3986 unreserved characters stay as they are). Parsing is
//! strict: unknown kinds, versions, missing or repeated fields and oversized links are refused.

use std::fmt;

/// Longest link accepted (a QR code of version 10 holds about this much in byte mode).
pub const MAX_LINK_LEN: usize = 512;

/// A parsed `yiqian://` link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrLink {
    /// Scan to sign request `request_id` on `server`, proving the scan with `nonce`.
    Sign {
        /// Server base URL, e.g. `https://sign.hospital.local`.
        server: String,
        /// Sign request id.
        request_id: String,
        /// One-time nonce printed only in the QR code.
        nonce: String,
    },
    /// Enrol a phone for `staff_id` with an activation code.
    Activate {
        /// Server base URL.
        server: String,
        /// Staff id.
        staff_id: String,
        /// One-time activation code.
        code: String,
    },
}

/// Why a link was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrError(pub &'static str);

impl fmt::Display for QrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid yiqian:// link: {}", self.0)
    }
}

impl std::error::Error for QrError {}

fn encode(out: &mut String, v: &str) {
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

fn decode(v: &str) -> Result<String, QrError> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(QrError("truncated escape"))?;
                let hex = std::str::from_utf8(hex).map_err(|_| QrError("bad escape"))?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| QrError("bad escape"))?);
                i += 3;
            }
            b'+' => return Err(QrError("'+' is not allowed; use %20")),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| QrError("not UTF-8"))
}

impl fmt::Display for QrLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, fields): (&str, [(&str, &str); 3]) = match self {
            Self::Sign {
                server,
                request_id,
                nonce,
            } => ("sign", [("r", request_id), ("n", nonce), ("s", server)]),
            Self::Activate {
                server,
                staff_id,
                code,
            } => ("activate", [("u", staff_id), ("c", code), ("s", server)]),
        };
        let mut out = format!("yiqian://{kind}?v=1");
        for (k, v) in fields {
            out.push('&');
            out.push_str(k);
            out.push('=');
            encode(&mut out, v);
        }
        f.write_str(&out)
    }
}

impl std::str::FromStr for QrLink {
    type Err = QrError;

    fn from_str(link: &str) -> Result<Self, QrError> {
        if link.len() > MAX_LINK_LEN {
            return Err(QrError("too long"));
        }
        let rest = link
            .strip_prefix("yiqian://")
            .ok_or(QrError("not a yiqian:// link"))?;
        let (kind, query) = rest.split_once('?').ok_or(QrError("no parameters"))?;
        let mut fields: Vec<(&str, String)> = Vec::new();
        for pair in query.split('&') {
            let (k, v) = pair
                .split_once('=')
                .ok_or(QrError("parameter without '='"))?;
            if fields.iter().any(|(seen, _)| *seen == k) {
                return Err(QrError("repeated parameter"));
            }
            fields.push((k, decode(v)?));
        }
        let mut take = |k: &str| -> Result<String, QrError> {
            let pos = fields
                .iter()
                .position(|(seen, _)| *seen == k)
                .ok_or(QrError("missing parameter"))?;
            let v = fields.swap_remove(pos).1;
            if v.is_empty() {
                return Err(QrError("empty parameter"));
            }
            Ok(v)
        };
        if take("v")? != "1" {
            return Err(QrError("unsupported version"));
        }
        let parsed = match kind {
            "sign" => Self::Sign {
                request_id: take("r")?,
                nonce: take("n")?,
                server: take("s")?,
            },
            "activate" => Self::Activate {
                staff_id: take("u")?,
                code: take("c")?,
                server: take("s")?,
            },
            _ => return Err(QrError("unknown link kind")),
        };
        if !fields.is_empty() {
            return Err(QrError("unknown parameter"));
        }
        let server = match &parsed {
            Self::Sign { server, .. } | Self::Activate { server, .. } => server,
        };
        if !(server.starts_with("https://") || server.starts_with("http://")) {
            return Err(QrError("server must be an http(s) URL"));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sign_link_round_trips_and_reads_as_documented() {
        let l = QrLink::Sign {
            server: "https://sign.hospital.local:8443".into(),
            request_id: "req_1".into(),
            nonce: "n o/n&ce".into(),
        };
        let s = l.to_string();
        assert_eq!(
            s,
            "yiqian://sign?v=1&r=req_1&n=n%20o%2Fn%26ce&s=https%3A%2F%2Fsign.hospital.local%3A8443"
        );
        assert_eq!(s.parse::<QrLink>().unwrap(), l);
    }

    #[test]
    fn refuses_malformed_links() {
        for bad in [
            "",
            "http://x",
            "yiqian://sign",
            "yiqian://sign?v=2&r=a&n=b&s=http%3A%2F%2Fx",
            "yiqian://sign?v=1&r=a&n=b",
            "yiqian://sign?v=1&r=a&n=b&s=ftp%3A%2F%2Fx",
            "yiqian://sign?v=1&r=a&r=a&n=b&s=http%3A%2F%2Fx",
            "yiqian://sign?v=1&r=a&n=b&s=http%3A%2F%2Fx&z=1",
            "yiqian://sign?v=1&r=&n=b&s=http%3A%2F%2Fx",
            "yiqian://sign?v=1&r=a%2&n=b&s=http%3A%2F%2Fx",
            "yiqian://sign?v=1&r=a%FF&n=b&s=http%3A%2F%2Fx",
            "yiqian://sign?v=1&r=a+b&n=b&s=http%3A%2F%2Fx",
            "yiqian://pay?v=1&r=a&n=b&s=http%3A%2F%2Fx",
        ] {
            assert!(bad.parse::<QrLink>().is_err(), "{bad:?}");
        }
        let long = format!(
            "yiqian://sign?v=1&r={}&n=b&s=http%3A%2F%2Fx",
            "a".repeat(600)
        );
        assert!(long.parse::<QrLink>().is_err());
    }

    fn field() -> impl Strategy<Value = String> {
        "\\PC{1,10}"
    }

    proptest! {
        #[test]
        fn any_link_round_trips(a in field(), b in field(), host in "[a-z0-9.-]{1,30}", sign in any::<bool>()) {
            let server = format!("https://{host}");
            let l = if sign {
                QrLink::Sign { server, request_id: a, nonce: b }
            } else {
                QrLink::Activate { server, staff_id: a, code: b }
            };
            prop_assert_eq!(l.to_string().parse::<QrLink>().unwrap(), l);
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,200}") {
            let _ = s.parse::<QrLink>();
            let _ = format!("yiqian://sign?{s}").parse::<QrLink>();
        }
    }
}
