//! Black-box tests of the gateway: a real server on port 0 with a temporary data directory,
//! real TLS with the development PKI, and a real client per party. One test binary for the
//! crate, with modules, because every file in tests/ links separately.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

mod authorization;
mod console;
mod crash;
mod durability;
mod harness;
mod inbox;
mod lifecycle;
mod monitoring;
mod oidc;
mod ops;
mod people;
mod postgres_link;
mod privacy;
mod referrals;
mod scale_out;
mod signatures;
mod structures;
mod telemetry;
mod tls;
