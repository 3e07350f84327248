//! Reconciliation from listings: what the registry must hold, given what every bucket
//! holds now. Pure, so start-up, `/list` and the periodic sync share one tested rule.

use std::collections::{HashMap, HashSet};

use super::entry::Entry;
use crate::config::BucketConfig;
use crate::s3::ListedObject;

/// The registry a set of listings implies.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// One entry per key, in no particular order.
    pub files: Vec<Entry>,
    /// Keys present in more than one bucket.
    pub duplicates: HashSet<String>,
}

/// `listings[i]` is bucket `i`'s full listing; `home(key)` is the bucket the key is
/// registered in now (by the registry, or at start-up by the manifests), if any.
///
/// Routes are sticky: a key stays in its home bucket as long as that bucket still holds
/// it (so a `/relocate` lasts). A key with no home, or whose home no longer holds it, is
/// registered in the first bucket (priority order) that holds it. A key held by several
/// buckets is counted as a duplicate; each bucket's own objects are not files.
pub fn reconcile(
    buckets: &[BucketConfig],
    listings: &[Vec<ListedObject>],
    home: impl Fn(&str) -> Option<usize>,
) -> Reconciled {
    let total: usize = listings.iter().map(Vec::len).sum();
    // Key → position in `files`; borrows the listings' keys, so nothing is copied twice.
    let mut at: HashMap<&str, usize> = HashMap::with_capacity(total);
    let mut out = Reconciled {
        files: Vec::with_capacity(total),
        duplicates: HashSet::new(),
    };
    for (i, listing) in listings.iter().enumerate() {
        let bucket = &buckets[i];
        for o in listing {
            if bucket.owns(&o.key) {
                continue;
            }
            let entry = || Entry::new(o.key.clone(), i, o.size, &o.last_modified);
            match at.get(o.key.as_str()) {
                None => {
                    at.insert(&o.key, out.files.len());
                    out.files.push(entry());
                }
                Some(&first) => {
                    out.duplicates.insert(o.key.clone());
                    // A later bucket takes the key only when it is the key's home.
                    if home(&o.key) == Some(i) {
                        out.files[first] = entry();
                    }
                }
            }
        }
    }
    out
}

impl Reconciled {
    /// The entry of `key`, if any (a scan: for tests and small sets).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.files.iter().find(|e| e.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str) -> ListedObject {
        ListedObject {
            key: key.into(),
            size: 1,
            last_modified: "2026-01-01T00:00:00Z".into(),
            etag: String::new(),
        }
    }

    #[test]
    fn first_bucket_wins_and_duplicates_are_counted() {
        let buckets = vec![
            BucketConfig {
                name: "a".into(),
                manifest_key: "m.json".into(),
                public: true,
            },
            BucketConfig {
                name: "b".into(),
                manifest_key: "m.json".into(),
                public: false,
            },
        ];
        let listings = [
            vec![obj("x"), obj("m.json")],
            vec![obj("x"), obj("y"), obj("m.json")],
        ];
        let r = reconcile(&buckets, &listings, |_| None);
        assert_eq!(r.files.len(), 2);
        assert_eq!(r.get("x").map(|e| e.bucket).unwrap(), 0);
        assert_eq!(r.get("y").map(|e| e.bucket).unwrap(), 1);
        assert_eq!(r.duplicates, HashSet::from(["x".to_owned()]));

        // Sticky: a key whose home still holds it stays there, whatever the priority.
        let r = reconcile(&buckets, &listings, |k| (k == "x").then_some(1));
        assert_eq!(r.get("x").map(|e| e.bucket).unwrap(), 1);
        assert_eq!(r.duplicates, HashSet::from(["x".to_owned()]));

        // A home that no longer holds the key does not keep it.
        let r = reconcile(&buckets, &[vec![obj("x")], vec![obj("y")]], |k| {
            (k == "x").then_some(1)
        });
        assert_eq!(r.get("x").map(|e| e.bucket).unwrap(), 0);
        assert!(r.duplicates.is_empty());
    }
}
