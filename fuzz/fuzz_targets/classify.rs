//! `cargo fuzz run classify`: the classifier must never panic, and a
//! not_bounce verdict always explains itself.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = bouncectl::message::classify(data, &bouncectl::message::Options::default());
    if c.kind == bouncectl::message::Kind::NotBounce {
        assert!(c.explanation.is_some());
    }
});
