//! Request counters, so tests can assert how many S3 calls a code path made.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Thread-safe request counters of one [`LocalS3`](crate::LocalS3).
///
/// Cheap to clone; clones share the same counters.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    http: AtomicU64,
    ops: Mutex<HashMap<String, u64>>,
}

impl Stats {
    /// Requests that reached the S3 operation `op` (e.g. `"HeadObject"`),
    /// counted before the access check: anonymous and refused ones included.
    /// Requests with a bad signature never reach an operation (see [`Stats::total`]).
    #[must_use]
    pub fn count(&self, op: &str) -> u64 {
        self.ops().get(op).copied().unwrap_or(0)
    }

    /// Every HTTP request received, including the ones rejected before an
    /// operation was resolved (bad signature, malformed URL, ...).
    #[must_use]
    pub fn total(&self) -> u64 {
        self.inner.http.load(Ordering::SeqCst)
    }

    /// Per-operation counts, sorted by name (handy for debugging output).
    #[must_use]
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.ops().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Sets every counter back to zero.
    pub fn reset(&self) {
        self.ops().clear();
        self.inner.http.store(0, Ordering::SeqCst);
    }

    pub(crate) fn record_http(&self) {
        self.inner.http.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn record_op(&self, op: &str) {
        let mut ops = self.ops();
        // Avoids allocating a key for every request once an operation was seen.
        match ops.get_mut(op) {
            Some(n) => *n += 1,
            None => {
                ops.insert(op.to_owned(), 1);
            }
        }
    }

    fn ops(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.inner
            .ops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_resets() {
        let stats = Stats::default();
        stats.record_http();
        stats.record_http();
        stats.record_op("HeadObject");
        stats.record_op("HeadObject");
        stats.record_op("GetObject");
        assert_eq!(stats.total(), 2);
        assert_eq!(stats.count("HeadObject"), 2);
        assert_eq!(stats.count("GetObject"), 1);
        assert_eq!(stats.count("PutObject"), 0);
        assert_eq!(stats.snapshot().len(), 2);
        stats.reset();
        assert_eq!(stats.total(), 0);
        assert_eq!(stats.count("HeadObject"), 0);
    }
}
