//! hactl: converge a RabbitMQ HA cluster (HAProxy + Keepalived in front) from a YAML inventory.

pub mod cli;
pub mod commands;
pub mod exit;
pub mod inventory;
pub mod secret;
