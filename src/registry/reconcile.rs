//! Reconciliation from listings: what the registry must hold, given what every bucket
//! holds now. Pure, so start-up, `/list` and the periodic sync share one tested rule.

use std::collections::{HashMap, HashSet};

use super::entry::Entry;
use crate::config::BucketConfig;
use crate::s3::ListedObject;

/// The registry a set of listings implies.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub files: HashMap<String, Entry>,
    /// Keys present in more than one bucket.
    pub duplicates: HashSet<String>,
}

/// `listings[i]` is bucket `i`'s full listing. A key is registered in the first bucket
/// (priority order) that holds it; a key held by several is counted as a duplicate; each
/// bucket's own manifest object is not a file.
pub fn reconcile(buckets: &[BucketConfig], listings: &[Vec<ListedObject>]) -> Reconciled {
    let total: usize = listings.iter().map(Vec::len).sum();
    let mut out = Reconciled {
        files: HashMap::with_capacity(total),
        duplicates: HashSet::new(),
    };
    for (i, listing) in listings.iter().enumerate() {
        let manifest_key = buckets[i].manifest_key.as_str();
        for o in listing {
            if o.key == manifest_key {
                continue;
            }
            if out.files.contains_key(&o.key) {
                out.duplicates.insert(o.key.clone());
                continue;
            }
            out.files.insert(
                o.key.clone(),
                Entry::new(o.key.clone(), i, o.size, o.last_modified.clone()),
            );
        }
    }
    out
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
        let r = reconcile(
            &buckets,
            &[
                vec![obj("x"), obj("m.json")],
                vec![obj("x"), obj("y"), obj("m.json")],
            ],
        );
        assert_eq!(r.files.len(), 2);
        assert_eq!(r.files["x"].bucket, 0);
        assert_eq!(r.files["y"].bucket, 1);
        assert_eq!(r.duplicates, HashSet::from(["x".to_owned()]));
    }
}
