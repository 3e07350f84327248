//! Reconciliation from listings: what the registry must hold, given what every bucket
//! holds now. Pure, so start-up, `/list` and the periodic sync share one tested rule.

use std::collections::HashSet;
use std::sync::Arc;

use super::entry::Entry;
use crate::config::BucketId;

/// The registry a set of listings implies.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// One entry per key, sorted by key: the registry's own entry where the listing
    /// found it unchanged (a sync over a million unchanged files allocates none).
    pub files: Vec<Arc<Entry>>,
    /// Keys present in more than one bucket.
    pub duplicates: HashSet<String>,
}

/// `listings[i]` is bucket `i`'s full listing as entries (its own objects left out);
/// `home(key)` is the bucket the key is registered in now (by the registry, or at
/// start-up by the manifests), if any.
///
/// Routes are sticky: a key stays in its home bucket as long as that bucket still holds
/// it (so a `/relocate` lasts). A key with no home, or whose home no longer holds it, is
/// registered in the first bucket (priority order) that holds it. A key held by several
/// buckets is counted as a duplicate.
///
/// The listings are merged in key order (S3 lists in key order; they are sorted here if
/// not), so no map of every key is built: the result is sorted by key too.
pub(crate) fn reconcile(
    mut listings: Vec<Vec<Arc<Entry>>>,
    home: impl Fn(&str) -> Option<BucketId>,
) -> Reconciled {
    for listing in &mut listings {
        if !listing.is_sorted_by(|a, b| a.key < b.key) {
            listing.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            listing.dedup_by(|a, b| a.key == b.key);
        }
    }
    let total: usize = listings.iter().map(Vec::len).sum();
    let mut heads: Vec<std::iter::Peekable<std::vec::IntoIter<Arc<Entry>>>> = listings
        .into_iter()
        .map(|l| l.into_iter().peekable())
        .collect();
    let mut out = Reconciled {
        files: Vec::with_capacity(total),
        duplicates: HashSet::new(),
    };
    let mut holders: Vec<Arc<Entry>> = Vec::new();
    while let Some(least) = heads
        .iter_mut()
        .filter_map(|h| h.peek().map(|e| e.key.as_str()))
        .min()
        .map(str::to_owned)
    {
        holders.clear();
        for h in &mut heads {
            if let Some(e) = h.next_if(|e| e.key == least) {
                holders.push(e);
            }
        }
        if holders.len() > 1 {
            out.duplicates.insert(least.clone());
        }
        let home = home(&least);
        let pick = holders
            .iter()
            .position(|e| Some(e.bucket) == home)
            .unwrap_or(0);
        out.files.push(holders.swap_remove(pick));
    }
    out
}

impl Reconciled {
    /// The entry of `key`, if any (`files` is sorted by key).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.files
            .binary_search_by(|e| e.key.as_str().cmp(key))
            .ok()
            .map(|i| &*self.files[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str, bucket: usize) -> Arc<Entry> {
        Arc::new(Entry::new(
            key,
            BucketId::new(bucket),
            1,
            "2026-01-01T00:00:00Z",
        ))
    }

    #[test]
    fn first_bucket_wins_and_duplicates_are_counted() {
        let listings = || vec![vec![obj("x", 0)], vec![obj("x", 1), obj("y", 1)]];
        let r = reconcile(listings(), |_| None);
        assert_eq!(r.files.len(), 2);
        assert_eq!(r.get("x").map(|e| e.bucket.index()), Some(0));
        assert_eq!(r.get("y").map(|e| e.bucket.index()), Some(1));
        assert_eq!(r.duplicates, HashSet::from(["x".to_owned()]));

        // Sticky: a key whose home still holds it stays there, whatever the priority.
        let r = reconcile(listings(), |k| (k == "x").then_some(BucketId::new(1)));
        assert_eq!(r.get("x").map(|e| e.bucket.index()), Some(1));
        assert_eq!(r.duplicates, HashSet::from(["x".to_owned()]));

        // A home that no longer holds the key does not keep it.
        let r = reconcile(vec![vec![obj("x", 0)], vec![obj("y", 1)]], |k| {
            (k == "x").then_some(BucketId::new(1))
        });
        assert_eq!(r.get("x").map(|e| e.bucket.index()), Some(0));
        assert!(r.duplicates.is_empty());
    }

    #[test]
    fn merges_in_key_order_whatever_order_it_gets() {
        let r = reconcile(
            vec![
                vec![obj("b", 0), obj("a", 0), obj("z", 0)],
                vec![obj("a", 1), obj("\u{10FFFF}", 1), obj("A b", 1)],
                vec![],
            ],
            |_| None,
        );
        let keys: Vec<&str> = r.files.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["A b", "a", "b", "z", "\u{10FFFF}"]);
        assert_eq!(r.duplicates, HashSet::from(["a".to_owned()]));
        assert_eq!(r.get("a").map(|e| e.bucket.index()), Some(0));
    }
}
