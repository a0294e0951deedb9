#![no_main]
//! A mapping file (TOML), parsed and checked as the adapters load it.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    raccordo_adapters::fuzzing::mapping_file(data);
});
