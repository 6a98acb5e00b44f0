//! Replication in Litestream 0.5's format. So far: the LTX file codec ([`ltx`]); the WAL
//! shipper, restore and read replicas build on it.

pub mod ltx;
