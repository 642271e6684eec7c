#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| permitsync_fuzz::doc_ops(data));
