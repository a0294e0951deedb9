#![no_main]
//! An Agid-JWT-Signature header (the first byte picks the caller) checked as on a signed request.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = raccordo_gateway::fuzzing::signature(data);
});
