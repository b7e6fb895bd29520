//! hactl: converge a RabbitMQ HA cluster (HAProxy + Keepalived in front) from a YAML inventory.

pub mod ask;
pub mod cli;
pub mod commands;
pub mod envelope;
pub mod events;
pub mod exit;
pub mod host;
pub mod inventory;
pub mod lock;
pub mod pipeline;
pub mod plan;
mod procs;
pub mod rabbitmq;
pub mod redact;
pub mod render;
pub mod report;
pub mod rolling;
pub mod runner;
pub mod secret;
pub mod selection;
pub mod snapshot;
pub mod ssh;
pub mod status;
pub mod steps;
pub mod sysctl;
pub mod terminal;
pub mod tls;
