//! System and account endpoints: health, version, administrator sign-in.

use serde::{Deserialize, Serialize};

/// Body of `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// `"ok"` or `"unavailable"`.
    pub status: String,
    /// Individual checks, e.g. `("database", "ok")`, `("migrations", "current")`.
    #[serde(default)]
    pub checks: Vec<(String, String)>,
}

/// Body of `GET /api/v1/version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Product name.
    pub product: String,
    /// Server version (semver).
    pub version: String,
    /// Database backend in use: `sqlite` or `postgres`.
    pub database: String,
}

/// `POST /api/v1/auth/login`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Account name.
    pub username: String,
    /// Password (never logged).
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Answer to a successful login.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// Bearer token for `Authorization: Bearer ...`.
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// The password must be changed before any other call succeeds.
    pub must_change_password: bool,
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResponse")
            .field("expires_in", &self.expires_in)
            .field("must_change_password", &self.must_change_password)
            .finish_non_exhaustive()
    }
}

/// `POST /api/v1/auth/password`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// Current password.
    pub old_password: String,
    /// New password.
    pub new_password: String,
}

impl std::fmt::Debug for ChangePasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangePasswordRequest { .. }")
    }
}

/// `GET /api/v1/auth/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// Account name.
    pub username: String,
    /// Role: `sysadmin`, `secadmin` or `auditor` (三权分立).
    pub role: String,
    /// Whether the password must be changed first.
    pub must_change_password: bool,
}
