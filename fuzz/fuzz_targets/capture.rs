#![no_main]
// Thin wrapper: the logic lives in tapedeck_core::fuzz::capture (its corpus also runs in cargo test).
libfuzzer_sys::fuzz_target!(|data: &[u8]| tapedeck_core::fuzz::capture(data));
