#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| berth_engine::fuzzing::docker_request(data));
