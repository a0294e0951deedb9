//! Linking records of the same person across ambiti without exchanging identifiers: a keyed
//! pseudonym of the codice fiscale when there is one, and otherwise Bloom-filter encodings of
//! names, birth date, sex and country of birth compared with the Dice coefficient.

pub mod encode;
pub mod eval;
pub mod keys;
pub mod matcher;
pub mod normalise;
pub mod synth;

pub use encode::{Encoder, LinkRecord, Prepared};
