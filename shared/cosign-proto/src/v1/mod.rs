//! Version 1 of the public API: stable.

pub mod auth;
#[cfg(feature = "cosign")]
pub mod cosign;
mod error;
pub mod identity;
pub mod pad;
pub mod patient;
pub mod qr;
mod system;

pub use error::{ApiError, ErrorCode};
pub use system::{
    ChangePasswordRequest, HealthStatus, LoginRequest, LoginResponse, Me, VersionInfo,
};
