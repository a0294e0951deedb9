#![no_main]
//! A bearer token checked against a fixed identity provider's keys: must be refused, never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = raccordo_gateway::fuzzing::jwt(data);
});
