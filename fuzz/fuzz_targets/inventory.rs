//! The inventory loader and validator on arbitrary bytes: any input gives an inventory or at
//! least one error, never a panic, and no diagnostic carries a raw control character.
#![no_main]

use hactl::inventory::{Severity, load};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    match load::load_bytes(data, Path::new("fuzz.yaml")) {
        Ok(loaded) => {
            assert!(
                loaded
                    .warnings
                    .iter()
                    .all(|d| d.severity == Severity::Warning)
            );
        }
        Err(diags) => {
            assert!(diags.iter().any(|d| d.severity == Severity::Error));
            for d in &diags {
                let printed = hactl::terminal::escape(&d.to_string()).into_owned();
                assert!(!printed.contains('\x1b'), "{printed:?}");
            }
        }
    }
});
