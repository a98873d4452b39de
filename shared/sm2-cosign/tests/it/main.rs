//! One integration-test binary for sm2-cosign (each binary costs link time).

mod attacks;
mod common;
mod cosign;
mod external;
mod negative;
mod refresh;
mod seal;
mod vectors;
