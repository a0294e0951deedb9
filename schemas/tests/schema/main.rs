//! Schema v1 against its examples, code lists and Rust types.

mod codelists;
mod examples;
