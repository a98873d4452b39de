//! Share refresh tests (see src/refresh.rs).
