//! One page of a folder of the registry, sans-IO: folders (by `/`) first, then files,
//! each sorted by name, optionally filtered by a case-insensitive substring of the name.
//!
//! Pages are cut by a cursor (the last name of the previous page), not a page number,
//! so every page costs the same: the registry is scanned once under its read lock
//! (borrowed, nothing copied), keeping a max-heap of the [`PER_PAGE`] smallest matching
//! names after the cursor (references), plus the set of distinct folder names at this
//! level (references) to count each once. For a million files in one folder a page keeps
//! 500 references and copies 500 rows, never the million.

use crate::config::BucketId;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

use crate::registry::Entry;

/// Rows per page.
pub(crate) const PER_PAGE: usize = 500;

/// What to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    /// `""` (the root) or a folder path ending in `/`.
    pub prefix: &'a str,
    /// Already lower-case; `None` lists everything.
    pub filter: Option<&'a str>,
    /// The page starts after this name (a folder's ends with `/`); `None` = first page.
    pub after: Option<&'a str>,
}

/// One row of the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Row {
    /// `name` ends with `/`.
    Folder { name: String },
    File {
        /// The key below the prefix (no `/`).
        name: String,
        key: String,
        bucket: BucketId,
        size: u64,
        modified: Option<i64>,
    },
}

impl Row {
    pub(crate) fn name(&self) -> &str {
        match self {
            Row::Folder { name } | Row::File { name, .. } => name,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Page {
    pub rows: Vec<Row>,
    /// Matching folders and files at this level, on every page.
    pub total: usize,
    /// Matching entries before this page's first row.
    pub before: usize,
    /// The cursor of the next page, when there is one (this page's last name).
    pub next: Option<String>,
}

/// A candidate row, borrowed from the registry while it is scanned.
#[derive(Clone, Copy)]
enum Item<'a> {
    Folder(&'a str),
    File(&'a str, &'a Entry),
}

impl Item<'_> {
    fn rank(&self) -> (u8, &str) {
        match self {
            Item::Folder(n) => (0, n),
            Item::File(n, _) => (1, n),
        }
    }
}

/// Where a cursor sits in the order: folder names end with `/`, file names never hold one.
fn cursor_rank(after: &str) -> (u8, &str) {
    if after.ends_with('/') {
        (0, after)
    } else {
        (1, after)
    }
}

impl PartialEq for Item<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.rank() == other.rank()
    }
}
impl Eq for Item<'_> {}
impl PartialOrd for Item<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Item<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// Whether `name` contains `needle` (lower-case), ignoring case; ASCII names (the usual
/// case) are compared without allocating.
pub(crate) fn matches(name: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if name.is_ascii() && needle.is_ascii() {
        let (h, n) = (name.as_bytes(), needle.as_bytes());
        return h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    name.to_lowercase().contains(needle)
}

/// The page of `prefix`'s folder among `entries` that follows `after`.
pub(crate) fn page<'a>(entries: &mut dyn Iterator<Item = &'a Entry>, req: &Request<'_>) -> Page {
    let cursor = req.after.map(cursor_rank);
    let mut smallest: BinaryHeap<Item<'a>> = BinaryHeap::with_capacity(PER_PAGE + 1);
    let mut folders: HashSet<&'a str> = HashSet::new();
    let (mut total, mut before) = (0usize, 0usize);
    for e in entries {
        let Some(rest) = e.key.strip_prefix(req.prefix) else {
            continue;
        };
        let item = match rest.find('/') {
            Some(i) => Item::Folder(&rest[..=i]),
            // A key equal to the prefix (a "folder marker" object) has no name here.
            None if rest.is_empty() => continue,
            None => Item::File(rest, e),
        };
        let name = match item {
            Item::Folder(n) => n.strip_suffix('/').unwrap_or(n),
            Item::File(n, _) => n,
        };
        if let Some(needle) = req.filter
            && !matches(name, needle)
        {
            continue;
        }
        if let Item::Folder(n) = item
            && !folders.insert(n)
        {
            continue;
        }
        total += 1;
        if cursor.is_some_and(|c| item.rank() <= c) {
            before += 1;
            continue;
        }
        if smallest.len() < PER_PAGE {
            smallest.push(item);
        } else if let Some(mut largest) = smallest.peek_mut()
            && item < *largest
        {
            *largest = item;
        }
    }
    let rows: Vec<Row> = smallest
        .into_sorted_vec()
        .into_iter()
        .map(|item| match item {
            Item::Folder(n) => Row::Folder { name: n.to_owned() },
            Item::File(n, e) => Row::File {
                name: n.to_owned(),
                key: e.key.clone(),
                bucket: e.bucket,
                size: e.size,
                modified: e.modified_unix(),
            },
        })
        .collect();
    let next = (before + rows.len() < total)
        .then(|| rows.last().map(|r| r.name().to_owned()))
        .flatten();
    Page {
        rows,
        total,
        before,
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(keys: &[&str]) -> Vec<Entry> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| Entry::new(*k, BucketId::new(i % 2), i as u64, "2026-05-05T10:00:00Z"))
            .collect()
    }

    fn names(p: &Page) -> Vec<&str> {
        p.rows.iter().map(Row::name).collect()
    }

    fn list(all: &[Entry], prefix: &str, filter: Option<&str>, after: Option<&str>) -> Page {
        page(
            &mut all.iter(),
            &Request {
                prefix,
                filter,
                after,
            },
        )
    }

    #[test]
    fn folders_first_then_files_each_sorted() {
        let all = entries(&[
            "z.txt",
            "b/2.txt",
            "a.txt",
            "b/1.txt",
            "a/x/deep.txt",
            "b/c/d.txt",
            "b/",
        ]);
        let root = list(&all, "", None, None);
        assert_eq!(names(&root), ["a/", "b/", "a.txt", "z.txt"]);
        assert_eq!((root.total, root.before, root.next), (4, 0, None));
        let b = list(&all, "b/", None, None);
        assert_eq!(
            names(&b),
            ["c/", "1.txt", "2.txt"],
            "the marker b/ is no row"
        );
        match &b.rows[1] {
            Row::File {
                key, size, bucket, ..
            } => {
                assert_eq!((key.as_str(), *size, bucket.index()), ("b/1.txt", 3, 1));
            }
            other => panic!("{other:?}"),
        }
        assert!(list(&all, "nope/", None, None).rows.is_empty());
    }

    #[test]
    fn the_filter_ignores_case_and_applies_to_names_at_this_level() {
        let all = entries(&[
            "Report-2026.PDF",
            "reports/x.txt",
            "other.txt",
            "Ünïcode.txt",
        ]);
        assert_eq!(
            names(&list(&all, "", Some("report"), None)),
            ["reports/", "Report-2026.PDF"]
        );
        assert_eq!(names(&list(&all, "", Some("ünï"), None)), ["Ünïcode.txt"]);
        assert!(
            list(&all, "", Some("x.txt"), None).rows.is_empty(),
            "not deeper"
        );
        assert!(matches("ABC", ""));
        assert!(!matches("ab", "abc"));
    }

    #[test]
    fn pages_of_500_follow_their_cursor_in_order() {
        let keys: Vec<String> = (0..1234).rev().map(|i| format!("f{i:05}")).collect();
        let mut all = entries(&keys.iter().map(String::as_str).collect::<Vec<_>>());
        all.extend(entries(&["dir/a", "dir/b", "zdir/c"]));
        let first = list(&all, "", None, None);
        assert_eq!((first.total, first.before), (1236, 0));
        assert_eq!(first.rows.len(), PER_PAGE);
        assert_eq!(names(&first)[..3], ["dir/", "zdir/", "f00000"]);
        assert_eq!(first.next.as_deref(), Some("f00497"));
        let mut every: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let p = list(&all, "", None, after.as_deref());
            assert_eq!(p.before, every.len());
            every.extend(names(&p).iter().map(ToString::to_string));
            pages += 1;
            match p.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(every.len(), 1236);
        let mut sorted = every.clone();
        sorted[2..].sort();
        assert_eq!(every, sorted, "pages join up in order");
        // A folder cursor: everything after the folder, files included.
        let p = list(&all, "", None, Some("dir/"));
        assert_eq!((p.before, names(&p)[0]), (1, "zdir/"));
        assert!(
            list(&all, "", None, Some("zzz")).rows.is_empty(),
            "past the end"
        );
    }
}
