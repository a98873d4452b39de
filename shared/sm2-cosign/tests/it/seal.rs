//! Sealing tests (see src/seal.rs).
