//! The `/list` body, serialised from a sorted snapshot a few hundred entries at a time as
//! the client reads, instead of one multi-megabyte buffer per client.

use std::sync::Arc;

use bytes::Bytes;

use super::respond::ChunkSource;
use crate::config::BucketConfig;
use crate::registry::Entry;

/// Entries serialised per chunk: about 40 KB of JSON, a few socket writes.
const ENTRIES_PER_CHUNK: usize = 256;

/// `{"count":N,"files":[entry,…]}`, byte for byte what serialising the whole list at
/// once gives.
pub(crate) struct ListBody {
    entries: Vec<Arc<Entry>>,
    buckets: Vec<BucketConfig>,
    /// Entries already written; `None` before the opening.
    next: Option<usize>,
    done: bool,
}

impl ListBody {
    /// Sorts `entries` by key (once) and streams them.
    pub(crate) fn new(mut entries: Vec<Arc<Entry>>, buckets: &[BucketConfig]) -> ListBody {
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        ListBody {
            entries,
            buckets: buckets.to_vec(),
            next: None,
            done: false,
        }
    }
}

impl ChunkSource for ListBody {
    fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut out = Vec::with_capacity(48 * 1024);
        let start = match self.next {
            None => {
                out.extend_from_slice(b"{\"count\":");
                out.extend_from_slice(self.entries.len().to_string().as_bytes());
                out.extend_from_slice(b",\"files\":[");
                0
            }
            Some(n) => n,
        };
        let end = (start + ENTRIES_PER_CHUNK).min(self.entries.len());
        for (i, e) in self.entries[start..end].iter().enumerate() {
            if start + i > 0 {
                out.push(b',');
            }
            // Serialising plain strings and numbers into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, &e.json(&self.buckets));
        }
        self.next = Some(end);
        if end == self.entries.len() {
            out.extend_from_slice(b"]}");
            self.done = true;
            // Let the snapshot go as soon as the last byte is produced.
            self.entries = Vec::new();
        }
        Some(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BucketId;

    use crate::config::test_buckets as buckets;

    fn whole(entries: &[Arc<Entry>], buckets: &[BucketConfig]) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct All<'a> {
            count: usize,
            files: Vec<crate::registry::entry::EntryJson<'a>>,
        }
        serde_json::to_vec(&All {
            count: entries.len(),
            files: entries.iter().map(|e| e.json(buckets)).collect(),
        })
        .unwrap()
    }

    fn streamed(body: &mut ListBody) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        let mut chunks = 0;
        while let Some(c) = body.next_chunk() {
            out.extend_from_slice(&c);
            chunks += 1;
        }
        (out, chunks)
    }

    #[test]
    fn streamed_equals_whole_for_every_size() {
        let b = buckets();
        for n in [0, 1, 2, 255, 256, 257, 1000] {
            let entries: Vec<Arc<Entry>> = (0..n)
                .rev()
                .map(|i| {
                    Arc::new(Entry::new(
                        format!("k\"{i:05} ü"),
                        BucketId::new(i % 2),
                        i as u64,
                        "2026-05-05T10:00:00Z",
                    ))
                })
                .collect();
            let mut sorted = entries.clone();
            sorted.sort_by(|a, b| a.key.cmp(&b.key));
            let mut body = ListBody::new(entries, &b);
            let (out, chunks) = streamed(&mut body);
            assert_eq!(out, whole(&sorted, &b), "{n} entries");
            assert_eq!(chunks, n.div_ceil(ENTRIES_PER_CHUNK).max(1), "{n} entries");
            assert!(body.next_chunk().is_none());
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["count"], n);
        }
    }
}
