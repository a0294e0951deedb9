#![no_main]
//! A referral or monitoring request body: parsed, checked against schema v1 and typed.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    raccordo_gateway::fuzzing::json_ingest(data);
});
