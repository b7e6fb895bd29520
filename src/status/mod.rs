//! The cluster's health, as `hactl status` shows it. Read-only: nothing on any host is changed.
//! Every host is connected to and read on its own, all at once; one that cannot be reached is
//! reported and the others are still read.
//!
//! A run flows through four modules: [`read`] holds the remote reads (one SSH round trip per
//! host and role) and their parsers; [`gather`] runs them on every host at once; `diagnose`
//! turns what was read into a [`Report`] and its problems, in a stable order; `output` prints
//! the report for a terminal or for logs. [`model`] is the report, as `--json` prints it.
//!
//! Cost: one `rabbitmqctl cluster_status` per RabbitMQ node where beam.smp runs (it gives
//! membership, running nodes, versions, partitions and alarms at once), plus one `list_queues`
//! per inventory vhost on one node (the seed, read at the same time as its cluster_status; on
//! RabbitMQ 4.x none: classic mirroring is gone). Load balancers cost no Erlang VM at all.

mod diagnose;
mod gather;
pub mod model;
mod output;
pub mod read;

pub use gather::gather;
pub use model::Report;
pub use output::{human, plain};

#[cfg(test)]
mod tests;
