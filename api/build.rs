//! Writes the committed OpenAPI document (`docs/openapi.json`, pretty-printed for review) without
//! its insignificant whitespace, for the api function to serve (`openapi::serve`).
//!
//! A document that is not JSON is written as it is, with a warning: `crmflow openapi >
//! docs/openapi.json` empties the file before it builds the command that writes it. CI checks
//! that the committed document is what the code generates.

use std::path::Path;

fn main() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    println!("cargo::rerun-if-changed={}", source.display());
    let text = std::fs::read_to_string(&source).unwrap_or_default();
    let compact = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(document) => document.to_string(),
        Err(e) => {
            println!("cargo::warning={}: not JSON ({e}); served as it is", source.display());
            text
        }
    };
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("openapi.json");
    std::fs::write(&out, compact).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
