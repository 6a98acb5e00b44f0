//! Replication in Litestream 0.5's format. So far: the LTX file codec ([`ltx`]) and the WAL
//! reader ([`wal`]); the shipper, restore and read replicas build on them.

pub mod ltx;
pub mod replica;
pub mod restore;
pub mod wal;
