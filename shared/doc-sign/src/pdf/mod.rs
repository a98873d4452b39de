//! PDF signatures: signing as incremental updates, appearances, DSS (LTV), verification.

pub mod appearance;
pub(crate) mod doc;
pub mod dss;
pub mod image;
pub(crate) mod incremental;
pub mod keyword;
pub mod sign;
pub(crate) mod syntax;
pub mod verify;
