//! Support code shared by the integration tests (`mod common;` in a test file).

pub mod amqp;
pub mod exec_audit;
pub mod lab;
pub mod pty;
pub mod report;
pub mod schema;
pub mod traffic;
