//! `cargo fuzz run sync_message`: see `dealersync_core::fuzzing::sync_message` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dealersync_core::fuzzing::sync_message(data));
