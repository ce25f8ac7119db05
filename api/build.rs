//! Writes the committed OpenAPI document (`docs/openapi.json`, pretty-printed for review) without
//! its insignificant whitespace, for the api function to serve (`openapi::serve`).

use std::path::Path;

fn main() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    println!("cargo::rerun-if-changed={}", source.display());
    let text = std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    let document: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", source.display()));
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("openapi.json");
    std::fs::write(&out, document.to_string()).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
