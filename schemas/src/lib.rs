//! Common schema v1 of Raccordo.
//!
//! The JSON Schema documents under `schemas/json/` are the contract; the code lists under
//! `schemas/codelists/` are data versioned with them. This crate embeds both, compiles each
//! validator once (formats checked, no remote `$ref`), and offers Rust types that round-trip
//! every valid example.

pub mod codelist;
pub mod codice_fiscale;
pub mod types;
pub mod validate;

pub use types::*;
pub use validate::{Entity, SchemaViolation, validate};

/// Base of every `$id` in schema v1; the version is part of the URI.
pub const SCHEMA_BASE: &str = "https://schemas.raccordo.regione.toscana.it/v1/";
