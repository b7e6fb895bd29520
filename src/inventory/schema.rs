//! The shape of the inventory — every struct, field, type and whether it is required —
//! derived from the model's own `Deserialize` impls, so it cannot drift from `model.rs`; and
//! a checker that walks a located YAML tree against it, reporting every unknown field, wrong
//! type and missing field at once.
//!
//! The shape is found by running each type's `Deserialize` against a tracing deserializer
//! that records what it is asked for (`deserialize_struct` names the fields, `deserialize_u16`
//! the type, ...). A field is required when leaving it out makes serde call `missing_field`.
//!
//! [`trace`] derives the shape, [`check`] walks a tree against it.

mod check;
mod trace;

pub use check::{check, did_you_mean, one_of};
pub use trace::trace;

use std::sync::OnceLock;

/// What a value must look like.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Str,
    Bool,
    Int {
        min: i128,
        max: i128,
    },
    Float,
    /// One of the unit variants, as written in YAML.
    Enum(&'static [&'static str]),
    Option(Box<Shape>),
    Seq(Box<Shape>),
    /// String keys to values.
    Map(Box<Shape>),
    Struct(StructShape),
    /// Anything (e.g. `serde_json::Value`).
    Any,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StructShape {
    pub name: &'static str,
    pub fields: Vec<FieldShape>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldShape {
    pub name: &'static str,
    pub shape: Shape,
    pub required: bool,
}

impl StructShape {
    pub fn field(&self, name: &str) -> Option<&FieldShape> {
        self.fields.iter().find(|f| f.name == name)
    }
    pub fn names(&self) -> Vec<&'static str> {
        self.fields.iter().map(|f| f.name).collect()
    }
}

/// The shape of the whole inventory, traced once.
pub fn inventory_shape() -> &'static Shape {
    static SHAPE: OnceLock<Shape> = OnceLock::new();
    SHAPE.get_or_init(|| {
        trace::<super::Inventory>().unwrap_or_else(|e| {
            panic!("the inventory model cannot be described for validation: {e}")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::check::SECRET_STRUCT;
    use super::*;

    fn fields(shape: &Shape) -> &StructShape {
        match shape {
            Shape::Struct(s) => s,
            Shape::Option(s) => fields(s),
            other => panic!("not a struct: {other:?}"),
        }
    }

    #[test]
    fn shape_follows_the_model() {
        let inv = fields(inventory_shape());
        assert_eq!(inv.name, "Inventory");
        assert_eq!(
            inv.names(),
            [
                "cluster",
                "ssh",
                "cookie",
                "templates",
                "rabbitmq",
                "loadbalancer",
                "tls",
                "nodes"
            ]
        );
        let req: Vec<_> = inv
            .fields
            .iter()
            .filter(|f| f.required)
            .map(|f| f.name)
            .collect();
        assert_eq!(req, ["cluster", "cookie", "rabbitmq", "nodes"]);
        let Shape::Seq(node) = &inv.field("nodes").unwrap().shape else {
            panic!("nodes is not a list")
        };
        let node = fields(node);
        assert!(node.field("name").unwrap().required);
        assert!(!node.field("priority").unwrap().required);
        assert_eq!(
            node.field("priority").unwrap().shape,
            Shape::Option(Box::new(Shape::Int { min: 0, max: 255 }))
        );
        assert_eq!(
            node.field("roles").unwrap().shape,
            Shape::Seq(Box::new(Shape::Enum(&[
                "rabbitmq",
                "loadbalancer",
                "client"
            ])))
        );
        let cookie = fields(&inv.field("cookie").unwrap().shape);
        assert_eq!(cookie.name, SECRET_STRUCT);
        assert_eq!(cookie.names(), ["env", "file", "value"]);
        assert!(cookie.fields.iter().all(|f| !f.required));
    }
}
