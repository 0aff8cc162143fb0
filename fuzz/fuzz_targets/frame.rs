//! `cargo fuzz run frame`: see `dealersync_core::fuzzing::frame` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dealersync_core::fuzzing::frame(data));
