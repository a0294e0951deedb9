//! Schema v1 against its examples, code lists and Rust types.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

mod codelists;
mod examples;
