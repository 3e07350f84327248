//! A small bounded cache keyed by `(bucket, key)`, for per-file facts that only files
//! people ask for need (when S3 last confirmed a file, the redirect URL built for it).
//! Keeping them here rather than in every registry entry means a million files nobody
//! downloads cost nothing; the bound means a flood of distinct keys cannot grow it.
//!
//! Sharded so concurrent redirects rarely share a lock; a full shard is emptied (the
//! facts are all re-derivable: a cleared entry costs one S3 check or one signature).

use crate::config::BucketId;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};

const SHARDS: usize = 16;

pub struct KeyCache<V> {
    hasher: RandomState,
    per_shard: usize,
    shards: [Mutex<HashMap<u64, Slot<V>>>; SHARDS],
}

struct Slot<V> {
    bucket: BucketId,
    key: Box<str>,
    value: V,
}

impl<V> KeyCache<V> {
    /// A cache of about `capacity` entries (at least one per shard).
    pub fn new(capacity: usize) -> KeyCache<V> {
        KeyCache {
            hasher: RandomState::new(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, HashMap<u64, Slot<V>>> {
        // The high bits pick the shard; the map hashes the whole value again.
        self.shards[(hash >> 60) as usize % SHARDS]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the value of `(bucket, key)` (inserted by `default` when absent) and
    /// returns its result.
    pub fn with<R>(
        &self,
        bucket: BucketId,
        key: &str,
        default: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> R {
        let hash = self.hasher.hash_one((bucket, key));
        let mut shard = self.shard(hash);
        let hit = shard
            .get(&hash)
            .is_some_and(|s| s.bucket == bucket && &*s.key == key);
        if !hit {
            if shard.len() >= self.per_shard {
                shard.clear();
            }
            shard.insert(
                hash,
                Slot {
                    bucket,
                    key: key.into(),
                    value: default(),
                },
            );
        }
        let slot = shard
            .get_mut(&hash)
            .expect("present: found or inserted above");
        f(&mut slot.value)
    }

    /// The value of `(bucket, key)` if cached, through `f`.
    pub fn peek<R>(&self, bucket: BucketId, key: &str, f: impl FnOnce(&V) -> R) -> Option<R> {
        let hash = self.hasher.hash_one((bucket, key));
        let shard = self.shard(hash);
        shard
            .get(&hash)
            .filter(|s| s.bucket == bucket && &*s.key == key)
            .map(|s| f(&s.value))
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_values_per_bucket_and_key() {
        let c: KeyCache<u32> = KeyCache::new(100);
        c.with(BucketId::new(0), "a", || 1, |_| ());
        c.with(BucketId::new(1), "a", || 2, |_| ());
        assert_eq!(c.peek(BucketId::new(0), "a", |v| *v), Some(1));
        assert_eq!(c.peek(BucketId::new(1), "a", |v| *v), Some(2));
        assert_eq!(c.peek(BucketId::new(0), "b", |v| *v), None);
        c.with(BucketId::new(0), "a", || 9, |v| *v += 10);
        assert_eq!(c.peek(BucketId::new(0), "a", |v| *v), Some(11));
    }

    #[test]
    fn stays_bounded() {
        let c: KeyCache<u8> = KeyCache::new(1000);
        for i in 0..100_000 {
            c.with(BucketId::new(0), &format!("k{i}"), || 0, |_| ());
        }
        assert!(c.len() <= 1000 + SHARDS, "{}", c.len());
    }
}
