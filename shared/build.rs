//! Writes the Mozilla root certificates of the webpki-root-certs crate as one PEM bundle,
//! `$OUT_DIR/trusted-roots.pem`, the form the SDK's trust store takes. Compiled into the crate as
//! `crmflow_aws::sdk::TRUSTED_ROOTS_PEM`, so that no function encodes it when it starts.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

fn main() {
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in STANDARD.encode(cert).as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("trusted-roots.pem"), pem).expect("writing trusted-roots.pem");
}
