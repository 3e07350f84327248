//! A bounded memory of keys S3 recently proved missing from a bucket, so a flood of
//! requests for keys that do not exist costs one HEAD per key and TTL, not one per
//! request. Memory is capped: past the cap the oldest misses are forgotten first.

use crate::config::BucketId;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct MissCache {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// `(bucket, key)` → when the miss was proved.
    at: HashMap<(BucketId, Box<str>), Instant>,
    /// Insertion order, for O(1) eviction; may hold slots of keys forgotten since.
    order: VecDeque<(BucketId, Box<str>)>,
}

impl MissCache {
    pub fn new(ttl: Duration, capacity: usize) -> MissCache {
        MissCache {
            ttl,
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `bucket` was proved not to hold `key` less than the TTL before `now`.
    pub fn is_missing(&self, bucket: BucketId, key: &str, now: Instant) -> bool {
        if self.capacity == 0 || self.ttl.is_zero() {
            return false;
        }
        let inner = self.lock();
        // Looking up by a borrowed key needs an owned tuple; keys are short.
        inner
            .at
            .get(&(bucket, Box::from(key)))
            .is_some_and(|t| now.duration_since(*t) < self.ttl)
    }

    pub fn remember(&self, bucket: BucketId, key: &str, now: Instant) {
        if self.capacity == 0 || self.ttl.is_zero() {
            return;
        }
        let mut inner = self.lock();
        let id = (bucket, Box::<str>::from(key));
        if inner.at.insert(id.clone(), now).is_none() {
            inner.order.push_back(id);
        }
        while inner.at.len() > self.capacity {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            inner.at.remove(&old);
        }
        // Slots of forgotten keys linger in the queue; sweep them before it grows large.
        if inner.order.len() > 2 * self.capacity {
            let Inner { at, order } = &mut *inner;
            order.retain(|id| at.contains_key(id));
        }
    }

    /// Forgets a miss (the key was just found or registered).
    pub fn forget(&self, bucket: BucketId, key: &str) {
        if self.capacity == 0 {
            return;
        }
        self.lock().at.remove(&(bucket, Box::from(key)));
    }

    pub fn len(&self) -> usize {
        self.lock().at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_for_the_ttl_only() {
        let c = MissCache::new(Duration::from_secs(5), 10);
        let t = Instant::now();
        assert!(!c.is_missing(BucketId::new(0), "k", t));
        c.remember(BucketId::new(0), "k", t);
        assert!(c.is_missing(BucketId::new(0), "k", t + Duration::from_secs(4)));
        assert!(!c.is_missing(BucketId::new(1), "k", t), "per bucket");
        assert!(!c.is_missing(BucketId::new(0), "k", t + Duration::from_secs(5)));
        c.forget(BucketId::new(0), "k");
        assert!(!c.is_missing(BucketId::new(0), "k", t));
    }

    #[test]
    fn memory_is_capped() {
        let c = MissCache::new(Duration::from_secs(60), 1000);
        let t = Instant::now();
        for i in 0..100_000 {
            c.remember(BucketId::new(0), &format!("missing-{i}"), t);
        }
        assert!(c.len() <= 1000, "{}", c.len());
        assert!(c.inner.lock().unwrap().order.len() <= 2000);
        // The newest are the ones kept.
        assert!(c.is_missing(BucketId::new(0), "missing-99999", t));
        assert!(!c.is_missing(BucketId::new(0), "missing-0", t));
    }

    #[test]
    fn off_when_capacity_or_ttl_is_zero() {
        let t = Instant::now();
        for c in [
            MissCache::new(Duration::ZERO, 10),
            MissCache::new(Duration::from_secs(1), 0),
        ] {
            c.remember(BucketId::new(0), "k", t);
            assert!(!c.is_missing(BucketId::new(0), "k", t));
        }
    }
}
