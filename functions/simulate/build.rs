//! Links the function as a position-dependent executable on Linux (see the README's Figures):
//! no start-up relocations.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
