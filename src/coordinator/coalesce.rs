//! One HEAD in flight per object: concurrent checks of the same key share its answer, so
//! a burst on one popular file costs one S3 call.

use crate::config::BucketId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::s3::{ObjectMeta, S3Error};

type Answer = Result<ObjectMeta, S3Error>;
type Slot = Arc<OnceCell<Answer>>;

#[derive(Default)]
pub(crate) struct HeadCoalescer {
    in_flight: Mutex<HashMap<(BucketId, String), Slot>>,
}

/// Removes the in-flight slot when its owner finishes or is cancelled, so a later
/// request never reuses an old answer.
struct Owner<'a> {
    map: &'a Mutex<HashMap<(BucketId, String), Slot>>,
    id: Option<(BucketId, String)>,
    slot: Slot,
}

impl Drop for Owner<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let mut map = self
                .map
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if map.get(&id).is_some_and(|s| Arc::ptr_eq(s, &self.slot)) {
                map.remove(&id);
            }
        }
    }
}

impl HeadCoalescer {
    /// Runs `head` unless a check of the same `(bucket, key)` is already in flight, in which
    /// case waits for that one. Returns the answer and whether it was shared.
    pub(crate) async fn run<F, Fut>(&self, bucket: BucketId, key: &str, head: F) -> (Answer, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Answer>,
    {
        let id = (bucket, key.to_owned());
        let (slot, owner) = {
            let mut map = self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match map.get(&id) {
                Some(slot) => (Arc::clone(slot), None),
                None => {
                    let slot: Slot = Arc::new(OnceCell::new());
                    map.insert(id.clone(), Arc::clone(&slot));
                    (Arc::clone(&slot), Some(id))
                }
            }
        };
        let shared = owner.is_none();
        let _guard = Owner {
            map: &self.in_flight,
            id: owner,
            slot: Arc::clone(&slot),
        };
        // If the owner is cancelled mid-call, OnceCell lets a waiter run `head` instead.
        let answer = slot.get_or_init(head).await.clone();
        (answer, shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn concurrent_checks_share_one_call() {
        let c = Arc::new(HeadCoalescer::default());
        let calls = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (c, calls) = (Arc::clone(&c), Arc::clone(&calls));
            tasks.push(tokio::spawn(async move {
                c.run(BucketId::new(0), "k", || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Err(S3Error::NotFound)
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().0, Err(S3Error::NotFound));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Finished checks are not reused.
        let _ = c
            .run(BucketId::new(0), "k", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(S3Error::NotFound)
            })
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
