//! Version 1 of the public API: stable.

mod error;
mod system;

pub use error::{ApiError, ErrorCode};
pub use system::{
    ChangePasswordRequest, HealthStatus, LoginRequest, LoginResponse, Me, VersionInfo,
};
