//! The inventory: model, loading from YAML, validation, and secret resolution.

mod diagnostic;
pub mod endpoints;
pub mod load;
pub mod located;
pub mod model;
pub mod names;
pub mod overlap;
pub mod policy;
pub mod schema;
pub mod secrets;
pub mod signing_key;
pub mod validate;

pub use diagnostic::{Diagnostic, Severity};
pub use load::{Loaded, load};
pub use model::*;
pub use secrets::Secrets;
