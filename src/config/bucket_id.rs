//! A configured bucket by its position in the configuration, which is its priority.

use super::BucketConfig;

/// One of the configured buckets: its index in [`super::Config::buckets`]. A lower
/// index is a higher priority (a key with no home goes to the first bucket holding it).
/// At most 64 buckets are configured (a set of buckets is one `u64`, see
/// [`crate::registry::Dirty`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketId(usize);

impl BucketId {
    /// The bucket at `index` in the configuration (not checked against it).
    pub const fn new(index: usize) -> BucketId {
        BucketId(index)
    }

    /// The position in the configuration (for per-bucket tables).
    pub const fn index(self) -> usize {
        self.0
    }

    /// The first `count` buckets, in priority order.
    pub fn first(count: usize) -> impl Iterator<Item = BucketId> {
        (0..count).map(BucketId)
    }
}

impl std::ops::Index<BucketId> for [BucketConfig] {
    type Output = BucketConfig;

    fn index(&self, bucket: BucketId) -> &BucketConfig {
        &self[bucket.0]
    }
}

// Indexing does not reach the slice's impl through a `Vec` (whose own generic impl is
// tried first), hence the second.
impl std::ops::Index<BucketId> for Vec<BucketConfig> {
    type Output = BucketConfig;

    fn index(&self, bucket: BucketId) -> &BucketConfig {
        &self[bucket.0]
    }
}
