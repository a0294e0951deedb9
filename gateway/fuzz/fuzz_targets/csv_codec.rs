#![no_main]
//! A CSV export read with Prato's mapping (Windows-1252, ';') and converted record by record.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    raccordo_adapters::fuzzing::export(raccordo_adapters::fuzzing::Export::Csv, data);
});
