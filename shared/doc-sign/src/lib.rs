//! Document signatures: PDF (PAdES-style), detached CMS for any file, verification reports.
//! Built under issue 7 on top of `gm-pki`.
#![forbid(unsafe_code)]
