//! The failover tests' traffic: hactl's own client (`hactl drill` runs the same).
#![allow(unused_imports)]

pub use hactl::traffic::{Outage, Report, Settings, Traffic};
