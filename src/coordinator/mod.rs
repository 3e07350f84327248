//! Between the registry and S3: checking and locating keys, syncing from listings,
//! saving the registry in the buckets (manifests and their journals). Every function
//! here may talk to S3; none holds the registry lock while it does.
//!
//! What is true: the buckets' listings say which files exist; the manifests with their
//! journal records say where each file's route is (its registered bucket), and are the
//! registry's memory across restarts. Reconciliation keeps a key in its registered
//! bucket while that bucket holds it (sticky routes) and gives a key with no home to
//! the first bucket holding it; `/relocate` alone moves a key to the last one.
//!
//! - `locate`: one key (HEAD, coalesced in `coalesce`, misses remembered in `misses`);
//! - `listing`, `sync`: the one pipeline of start-up, `/list` and the periodic sync;
//! - `startup`: manifests and journals read, then that pipeline, then ready;
//! - `persist`: one writer per bucket (group commit, retries, compaction);
//! - `journal`: records appended, caught up with, read, deleted;
//! - `merge`: another replica's records or manifest folded in.

pub(crate) mod coalesce;
pub(crate) mod events;
pub(crate) mod journal;
pub mod listing;
pub(crate) mod locate;
pub(crate) mod merge;
pub(crate) mod misses;
pub(crate) mod persist;
pub(crate) mod startup;
pub mod sync;
