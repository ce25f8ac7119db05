//! The `crmflow` command; everything it does is in the library ([`crmflow_cli::run`]).

use std::process::ExitCode;

/// The engine allocates many small JSON values; mimalloc handles that far better than the
/// system allocator (measured with `scripts/bench-simulate.sh`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    ExitCode::from(crmflow_cli::run(
        std::env::args_os(),
        &mut crmflow_cli::Io {
            out: &mut out,
            err: &mut err,
        },
    ))
}
