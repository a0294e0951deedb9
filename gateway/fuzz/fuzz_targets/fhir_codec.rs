#![no_main]
//! FHIR R4 Bundles (NDJSON) read with Pisa's mapping and converted record by record.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    raccordo_adapters::fuzzing::export(raccordo_adapters::fuzzing::Export::Fhir, data);
});
