//! Between the registry and S3: checking and locating keys, syncing from listings,
//! persisting manifests. Every function here may talk to S3; none holds the registry
//! lock while it does.

pub mod coalesce;
pub mod events;
pub mod join;
pub mod listing;
pub mod locate;
pub mod misses;
pub mod persist;
pub mod startup;
pub mod sync;
