//! Yiqian 医签 co-signing server.
//!
//! Modules by responsibility (docs/architecture.md): `cli` parses the command line, `config`
//! joins file, environment and flags, `store` owns the database, `audit` the hash-chained log,
//! `auth` administrator accounts and sessions, `api` the HTTP surface, `keys` the crypto device,
//! `pki` the CA/TSA/OCSP services, `documents` the document archive and signing, `signing` doctor co-signing (apps, staff, phones, requests, rounds), `patient` patient signing in the H5 page (tasks, SMS codes, event certificates), `pad` bedside pads (enrolment, device certificates, the envelope channel), `hub` the WebSocket hand-off, `serve` the process lifecycle (bind, run, graceful shutdown).
#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod documents;
pub mod error;
pub mod hub;
pub mod identity;
pub mod init;
pub mod keys;
pub mod metrics;
pub mod pad;
pub mod patient;
pub mod pki;
pub mod serve;
pub mod signing;
pub mod store;
