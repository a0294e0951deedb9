//! Adapters: each ambito's local system connected by a mapping file instead of code.
//!
//! - [`mapping`]: the mapping file (TOML), checked as a whole when loaded.
//! - [`codec`]: reading and writing local records: CSV (any encoding), XML, JSON, FHIR R4.
//! - [`transform`]: one field's way in (local -> canonical) and out (canonical -> local).
//! - [`convert`]: a whole record both ways, with derivations, rejections and schema validation.
//! - [`check`]: `raccordo adapter check`, the report an integrator converges with.
//! - [`runner`]: `raccordo adapter run`, beside the local system; [`state`] and
//!   [`quarantine`] are what it keeps on disk.
//! - [`schema_shape`]: what the common schema says about a pointer (lists, required fields).
//! - [`bench`]: conversion throughput and memory.

pub mod bench;
pub mod check;
pub mod codec;
pub mod convert;
pub mod derive;
#[doc(hidden)]
pub mod fuzzing;
pub mod mapping;
pub mod quarantine;
pub mod runner;
pub mod schema_shape;
pub mod state;
pub mod transform;

pub use mapping::MappingFile;
