//! Outpost: a Supabase-compatible backend in one binary over one SQLite database.

pub mod admin;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod functions;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod policy;
pub mod realtime;
pub mod replication;
pub mod rest;
pub mod server;
pub mod storage;
