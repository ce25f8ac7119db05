//! The `crmflow` command; everything it does is in the library ([`crmflow_cli::run`]).

use std::process::ExitCode;

/// The engine allocates many small JSON values; mimalloc handles that far better than the
/// system allocator (measured with `scripts/bench-simulate.sh`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_t`, the same in mimalloc v2
/// and v3; the Rust bindings leave the option constants out).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

unsafe extern "C" {
    /// mimalloc's `mi_option_set` (linked in by the `mimalloc` crate).
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

fn main() -> ExitCode {
    // mimalloc gives memory it no longer uses back to the OS after 10 ms (`purge_delay`). The
    // simulator frees and allocates all the time, so the kernel zeroed the same huge pages again
    // and again (3,400 page faults instead of 700 on the 100,000-event bench, about 5% of the
    // time); peak memory is the same either way. -1: never purge.
    // SAFETY: an option setter with no preconditions, called before any other thread exists.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    ExitCode::from(crmflow_cli::run(
        std::env::args_os(),
        &mut crmflow_cli::Io {
            out: &mut out,
            err: &mut err,
        },
    ))
}
