//! Logging setup: `RUST_LOG` (default `info`), human-readable lines on stderr, coloured only
//! when stderr is a terminal (a log file gets plain text).
//!
//! Lines are formatted where they happen and written by a thread of their own, in buffered
//! batches: a request line costs the workers no `write(2)`. None is dropped (a full queue makes
//! the logger wait); lines still queued are written when the guard [`init`] returns is
//! dropped, so keep it until the process ends. A process killed with SIGKILL may lose the last
//! lines — the audit trail, not the log, is the record that must last (`data.rs`).

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls (tests) are no-ops and return `None`.
/// Dropping the guard writes what is queued and stops the writer thread.
#[must_use = "dropping the guard stops the log; keep it until the process ends"]
pub fn init() -> Option<WorkerGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("fabrikam-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .ok()
        .map(|()| guard)
}
