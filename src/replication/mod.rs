//! Replication in Litestream 0.5's format: a primary ships its WAL as LTX files to a replica
//! ([`primary`]), `outpost restore` rebuilds a database from one ([`restore`]), and a read
//! replica follows one ([`follow`]).

pub mod changelog;
pub mod compact;
pub mod config;
pub mod error;
pub mod follow;
pub mod generations;
pub mod local;
pub mod ltx;
pub mod primary;
pub mod proxy;
pub mod replica;
pub mod restore;
pub mod shipper;
pub mod status;
pub mod upload;
pub mod wal;
