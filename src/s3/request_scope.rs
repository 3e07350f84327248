//! What the S3 client knows of the HTTP request it works for, carried in task-locals so
//! that no S3 call needs an extra argument: how many calls the request made (for its
//! log line and `parparchik_s3_calls_per_redirect`), and whether it is an explicit API
//! request the circuit breaker must let through.

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    static CALLS: Cell<u32>;
    static PAST_THE_BREAKER: ();
}

/// Runs `work`, counting the S3 calls made on this task while it runs.
pub(crate) async fn counting_calls<F: Future>(work: F) -> (F::Output, u32) {
    CALLS
        .scope(Cell::new(0), async {
            let output = work.await;
            (output, CALLS.with(Cell::get))
        })
        .await
}

/// Adds `calls` made on another task (a task-local does not cross `spawn`) to the
/// count of the request this task serves, if any.
pub(crate) fn add_calls(calls: u32) {
    let _ = CALLS.try_with(|c| c.set(c.get() + calls));
}

/// One S3 call sent.
pub(crate) fn note_call() {
    add_calls(1);
}

/// Runs `work` with its S3 calls sent through an open circuit breaker (and closing it
/// when they succeed): `/update`, `/relocate` and `/list` are an operator's deliberate
/// requests; the breaker is there to shed the flood of downloads.
pub(crate) async fn past_the_breaker<F: Future>(work: F) -> F::Output {
    PAST_THE_BREAKER.scope((), work).await
}

/// Whether the current task runs inside [`past_the_breaker`].
pub(crate) fn is_past_the_breaker() -> bool {
    PAST_THE_BREAKER.try_with(|()| ()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_are_counted_per_scope_and_added_from_other_tasks() {
        let ((), outside) = counting_calls(async {}).await;
        assert_eq!(outside, 0);
        let ((), n) = counting_calls(async {
            note_call();
            let (_, inner) = counting_calls(async { note_call() }).await;
            add_calls(inner + 2);
        })
        .await;
        assert_eq!(n, 4);
        // Outside any request nothing is counted, and nothing fails.
        note_call();
        assert!(!is_past_the_breaker());
        assert!(past_the_breaker(async { is_past_the_breaker() }).await);
    }
}
