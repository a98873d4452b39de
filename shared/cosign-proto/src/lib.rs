//! Yiqian wire types shared by the server, the mobile app and the H5 pages.
//!
//! Stability: everything under [`v1`] stays stable or changes only in forward-compatible ways
//! (new optional fields, new error codes), because phones in the field update late.
//! This crate depends on serde only so that it builds for wasm32.
#![forbid(unsafe_code)]

pub mod v1;
