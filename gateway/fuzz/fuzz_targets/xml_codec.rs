#![no_main]
//! An XML export read with Firenze's mapping (namespaced) and converted record by record.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    raccordo_adapters::fuzzing::export(raccordo_adapters::fuzzing::Export::Xml, data);
});
