//! Listing a bucket in parallel: the key space is cut at split points taken from the keys
//! the registry already knows (a sample, so the ranges hold about as many objects each),
//! every range is listed at once with ListObjectsV2 `start-after`, and the ranges are
//! concatenated in order. A range is `(previous split, next split]`, so a key equal to a
//! split point is listed exactly once, in the range it ends.

use crate::s3::{ListedObject, S3Client, S3Error};

/// Keys sampled to choose split points: enough for even ranges, cheap to sort.
const SAMPLE: usize = 1024;

/// Up to `ranges - 1` split points: the quantiles of a sample of `known` keys (an
/// arbitrary order, e.g. a hash map's). Empty when there is too little to split.
pub fn split_points<'a>(
    known: impl ExactSizeIterator<Item = &'a str>,
    ranges: usize,
) -> Vec<String> {
    let total = known.len();
    // Below a few pages per range, one sequential listing is as fast.
    if ranges < 2 || total < ranges * 2000 {
        return Vec::new();
    }
    let stride = (total / SAMPLE).max(1);
    let mut sample: Vec<&str> = known.step_by(stride).collect();
    sample.sort_unstable();
    sample.dedup();
    let mut points: Vec<String> = (1..ranges)
        .map(|i| sample[i * sample.len() / ranges].to_owned())
        .collect();
    points.dedup();
    points
}

/// Up to `ranges - 1` split points among a bucket's first-level folders (its common
/// prefixes for `/`, sorted as S3 lists them), for a bucket the registry knows no keys
/// of yet (a first start): evenly spaced folders, assuming folders of similar sizes.
/// Empty with fewer than two folders.
pub fn split_points_from_prefixes(prefixes: &[String], ranges: usize) -> Vec<String> {
    if ranges < 2 || prefixes.len() < 2 {
        return Vec::new();
    }
    let cuts = (ranges - 1).min(prefixes.len() - 1);
    let mut points: Vec<String> = (1..=cuts)
        .map(|i| prefixes[i * prefixes.len() / (cuts + 1)].clone())
        .collect();
    points.dedup();
    points
}

/// The half-open ranges `(after, until]` that `splits` (sorted) cut the key space into.
pub fn ranges(splits: &[String]) -> Vec<(Option<&str>, Option<&str>)> {
    let mut out = Vec::with_capacity(splits.len() + 1);
    let mut after = None;
    for s in splits {
        out.push((after, Some(s.as_str())));
        after = Some(s.as_str());
    }
    out.push((after, None));
    out
}

/// Every object of `bucket`, listed range by range at once (sequentially when `splits`
/// is empty), in key order, each exactly once, kept as `keep` turns it (each page's raw
/// objects are dropped as soon as they are converted).
pub async fn list_bucket<T>(
    s3: &S3Client,
    bucket: &str,
    splits: &[String],
    keep: impl Fn(ListedObject) -> Option<T>,
    mut progress: impl FnMut(usize),
) -> Result<Vec<T>, S3Error> {
    if splits.is_empty() {
        return s3
            .list_range_kept(bucket, None, None, &keep, progress)
            .await;
    }
    // Ranges must not overlap: split points in key order, each once.
    let mut splits = splits.to_vec();
    splits.sort_unstable();
    splits.dedup();
    let keep = &keep;
    let listings = crate::join::join_all(
        ranges(&splits)
            .into_iter()
            .map(|(after, until)| async move {
                s3.list_range_kept(bucket, after, until, keep, |_| {}).await
            })
            .collect(),
    )
    .await;
    let mut all = Vec::new();
    for listing in listings {
        all.extend(listing?);
        progress(all.len());
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_keys_are_not_split() {
        let keys: Vec<String> = (0..1000).map(|i| format!("k{i:05}")).collect();
        assert!(split_points(keys.iter().map(String::as_str), 8).is_empty());
        assert!(split_points(keys.iter().map(String::as_str), 1).is_empty());
    }

    #[test]
    fn splits_are_sorted_distinct_quantiles() {
        // Reverse order stands for a hash map's arbitrary one.
        let keys: Vec<String> = (0..100_000).rev().map(|i| format!("k{i:06}")).collect();
        let points = split_points(keys.iter().map(String::as_str), 8);
        assert_eq!(points.len(), 7);
        assert!(points.windows(2).all(|w| w[0] < w[1]), "{points:?}");
        // Roughly even: each eighth holds about 12 500 keys.
        let mut at = 0usize;
        for p in &points {
            let n: usize = p[1..].parse().unwrap();
            assert!((n - at).abs_diff(12_500) < 1_500, "{p} after {at}");
            at = n;
        }
    }

    #[test]
    fn folders_give_evenly_spaced_split_points() {
        let folders: Vec<String> = (0..1000).map(|i| format!("dir{i:04}/")).collect();
        let points = split_points_from_prefixes(&folders, 8);
        assert_eq!(points.len(), 7);
        assert_eq!(points[0], "dir0125/");
        assert_eq!(points[6], "dir0875/");
        let few = vec!["a/".to_owned(), "b/".to_owned(), "c/".to_owned()];
        assert_eq!(split_points_from_prefixes(&few, 8), vec!["b/", "c/"]);
        assert!(split_points_from_prefixes(&few[..1], 8).is_empty());
        assert!(split_points_from_prefixes(&few, 1).is_empty());
    }

    #[test]
    fn ranges_cover_the_key_space_once() {
        let splits = vec!["b".to_owned(), "d".to_owned()];
        assert_eq!(
            ranges(&splits),
            vec![(None, Some("b")), (Some("b"), Some("d")), (Some("d"), None)]
        );
        assert_eq!(ranges(&[]), vec![(None, None)]);
    }
}
