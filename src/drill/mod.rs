//! `hactl drill`: proves the cluster's HA promise with numbers. The traffic client is
//! [`crate::traffic`]; here is what the drill sets up and removes ([`resources`]), how it
//! checks replication ([`replication`]), the faults it injects ([`fault`]) and how one is
//! exercised and repaired ([`exercise`]), and what it reports ([`report`]).

pub mod exercise;
pub mod fault;
pub mod replication;
pub mod report;
pub mod resources;
