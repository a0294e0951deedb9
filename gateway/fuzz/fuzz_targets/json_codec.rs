#![no_main]
//! A JSON export read with Livorno's mapping and converted record by record.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    raccordo_adapters::fuzzing::export(raccordo_adapters::fuzzing::Export::Json, data);
});
