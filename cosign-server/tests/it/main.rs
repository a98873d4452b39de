//! The one integration-test binary of cosign-server (each binary costs link time). Every test
//! talks to a real server over a loopback socket; tests marked with `both_backends!` run once on
//! SQLite and once on a fresh PostgreSQL database.

// Test code may unwrap and panic: a failure is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
mod tools;

mod activation_sms;
mod audit_mac;
mod auth;
mod autosign;
mod cli;
mod cosign;
mod cosign_load;
mod documents;
mod foreign_trust;
mod h5_page;
mod hostile_input;
mod http_basics;
mod identity;
mod identity_page;
mod keys;
mod pad;
mod pad_page;
mod patient;
mod phone_cli;
mod pki;
mod pki_external;
mod pki_rollover;
mod s3;
mod store;
mod tauri_app;
mod terminal_demo;
mod unbind;
