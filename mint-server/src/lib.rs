//! The mint daemon: a CDK mint that creates paid mining-share quotes for
//! pools over a Noise-encrypted Sv2 listener and over Redis.
#![deny(missing_docs)]

mod accept;
pub mod admission;
pub mod app;
pub mod cashu_mint;
pub mod config;
pub mod data_dir;
pub mod fd_limit;
pub mod http_server;
pub mod interval;
pub mod keyset;
pub mod listener;
mod locking_keys;
pub mod metrics;
pub mod payment;
mod quote_writer;
pub mod quotes;
pub mod redis_consumer;
pub mod redis_lease;
pub mod runtimes;
pub mod session;
mod summary;
pub mod supervisor;
pub mod writer_metrics;
