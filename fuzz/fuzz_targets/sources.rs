#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flowdex_fuzz::sources(data));
