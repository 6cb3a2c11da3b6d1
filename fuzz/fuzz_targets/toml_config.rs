#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mammo_fuzz::toml_config(data));
