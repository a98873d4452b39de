//! One integration-test binary for sm2-cosign (each binary costs link time).
// Test helpers outside #[test] functions are test code too (clippy.toml only covers #[test]).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(
    clippy::cast_possible_truncation,
    clippy::items_after_statements,
    clippy::needless_raw_string_hashes
)]

mod attacks;
mod common;
mod cosign;
mod external;
mod negative;
mod refresh;
mod seal;
mod vectors;
