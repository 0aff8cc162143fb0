//! `cargo fuzz run engine`: see `dealersync_core::fuzzing::engine` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dealersync_core::fuzzing::engine(data));
