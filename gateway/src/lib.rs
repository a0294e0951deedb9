//! The Raccordo gateway: routes cross-territory referrals between ambiti over mutual TLS, keeps
//! identities in an encrypted vault, acknowledges only what is durable, and audits every access
//! in a hash chain. See ARCHITECTURE.md at the repository root for the map.

pub mod access_report;
pub mod api;
pub mod authorization;
pub mod bench;
pub mod canonical;
pub mod client;
pub mod config;
pub mod consents;
pub mod console;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod inbox;
pub mod keys;
pub mod lifecycle;
pub mod linkage;
pub mod metrics;
pub mod monitoring;
pub mod overdue;
pub mod people;
pub mod persons;
pub mod pki;
pub mod policy;
pub mod problem;
pub mod pseudonym;
pub mod rate_limit;
pub mod record_id;
pub mod referrals;
pub mod region_ca;
pub mod registry;
pub mod retention;
pub mod revocation;
pub mod rotation;
pub mod secret;
pub mod signature;
pub mod startup;
pub mod state;
pub mod store;
pub mod structures;
pub mod telemetry;
pub mod tls;
pub mod vault;

pub use config::{Config, Settings};
pub use startup::Application;
