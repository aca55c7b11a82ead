//! The one pool that blocking work runs on: store calls, reservation book transactions, P-node
//! agent RPCs. Async callers (HTTP workers, the reservation clock, the executors) await
//! [`run`], so a slow database or agent never holds an API worker, and every such call in the
//! process shares one bounded set of threads instead of one pool per runtime.

use std::sync::OnceLock;

/// Threads the pool may grow to; beyond it calls queue.
const MAX_THREADS: usize = 64;

/// A blocking call that did not complete: the pool is gone or the call panicked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a blocking call did not complete: {0}")]
pub struct BlockingError(pub String);

fn pool() -> &'static tokio::runtime::Runtime {
    static POOL: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    POOL.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(MAX_THREADS)
            .thread_name("vcds-blocking")
            .build()
            // Without threads the process cannot do anything; say so at the first call.
            .unwrap_or_else(|e| panic!("cannot start the blocking pool: {e}"))
    })
}

/// Runs `f` on the blocking pool and waits for it without blocking the caller's thread.
pub async fn run<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BlockingError> {
    pool()
        .spawn_blocking(f)
        .await
        .map_err(|e| BlockingError(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_off_the_callers_thread() {
        let caller = std::thread::current().id();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let ran_on = rt.block_on(super::run(move || std::thread::current().id()));
        assert_ne!(ran_on, Ok(caller));
        let panicked = rt.block_on(super::run(|| -> u32 { panic!("boom") }));
        assert!(panicked.is_err());
    }
}
