//! Adapter tests: the reference adapters through `check`, and the runner against a real
//! gateway (real TLS, the development PKI, a real store). One test binary for the crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

mod gateway;
mod reference;
mod runner;
