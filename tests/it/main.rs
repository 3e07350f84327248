//! The integration tests, one module per subject, in one binary: the crate, local-s3 and
//! s3s are linked once instead of once per file. `support` holds the harness they share.
//!
//! `tests/http_limits.rs` stays a binary of its own: it measures this process's resident
//! memory, which the other tests running beside it would make meaningless.

mod support;

mod access;
mod access_limits;
mod api;
mod bad_input;
mod browse;
mod check_config;
mod cli;
mod credentials;
mod deployment;
mod events;
mod faults;
mod fuzz_regressions;
mod hotpath;
mod journal;
mod lies;
mod logs;
mod manifest_forms;
mod replicas;
mod s3_client;
mod s3_tls;
mod sigv4_props;
mod sigv4_s3_examples;
mod sigv4_vectors;
mod startup;
