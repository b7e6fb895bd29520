//! The shape of the inventory — every struct, field, type and whether it is required —
//! derived from the model's own `Deserialize` impls, so it cannot drift from `model.rs`; and
//! a checker that walks a located YAML tree against it, reporting every unknown field, wrong
//! type and missing field at once.
//!
//! The shape is found by running each type's `Deserialize` against a tracing deserializer
//! that records what it is asked for (`deserialize_struct` names the fields, `deserialize_u16`
//! the type, ...). A field is required when leaving it out makes serde call `missing_field`.

use super::located::{FieldPath, Node, Pos, Problem, Scalar, Value};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde_json::Value as Json;
use std::cell::RefCell;
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

/// Traces `T`'s shape.
pub fn trace<T: DeserializeOwned>() -> Result<Shape, String> {
    let shape = trace_with::<T>(None).map_err(|e| e.to_string())?;
    // Second pass: which fields are required.
    let mut structs = Vec::new();
    collect_structs(&shape, &mut structs);
    let mut required = Vec::new();
    for (name, field) in structs {
        match trace_with::<T>(Some((name, field))) {
            Err(TraceError::Missing(f)) if f == field => required.push((name, field)),
            Err(TraceError::Other(e)) => return Err(e),
            _ => {}
        }
    }
    let mut shape = shape;
    mark_required(&mut shape, &required);
    Ok(shape)
}

fn trace_with<T: DeserializeOwned>(
    omit: Option<(&'static str, &'static str)>,
) -> Result<Shape, TraceError> {
    let out = RefCell::new(None);
    T::deserialize(Tracer {
        out: &out,
        omit,
        depth: 0,
    })?;
    out.into_inner()
        .ok_or_else(|| TraceError::Other("nothing was traced".into()))
}

fn collect_structs(shape: &Shape, out: &mut Vec<(&'static str, &'static str)>) {
    match shape {
        Shape::Option(s) | Shape::Seq(s) | Shape::Map(s) => collect_structs(s, out),
        Shape::Struct(st) => {
            for f in &st.fields {
                if !out.contains(&(st.name, f.name)) {
                    out.push((st.name, f.name));
                }
                collect_structs(&f.shape, out);
            }
        }
        _ => {}
    }
}

fn mark_required(shape: &mut Shape, required: &[(&'static str, &'static str)]) {
    match shape {
        Shape::Option(s) | Shape::Seq(s) | Shape::Map(s) => mark_required(s, required),
        Shape::Struct(st) => {
            for f in &mut st.fields {
                f.required = required.contains(&(st.name, f.name));
                mark_required(&mut f.shape, required);
            }
        }
        _ => {}
    }
}

#[derive(Debug)]
enum TraceError {
    Missing(&'static str),
    Other(String),
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceError::Missing(m) => write!(f, "missing field {m}"),
            TraceError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TraceError {}

impl de::Error for TraceError {
    fn custom<M: std::fmt::Display>(msg: M) -> Self {
        TraceError::Other(msg.to_string())
    }
    fn missing_field(field: &'static str) -> Self {
        TraceError::Missing(field)
    }
}

struct Tracer<'a> {
    out: &'a RefCell<Option<Shape>>,
    omit: Option<(&'static str, &'static str)>,
    depth: usize,
}

impl Tracer<'_> {
    fn set(&self, shape: Shape) {
        *self.out.borrow_mut() = Some(shape);
    }
    /// Traces a nested value into a fresh slot.
    fn nested<'de, S: de::DeserializeSeed<'de>>(
        &self,
        seed: S,
    ) -> Result<(S::Value, Shape), TraceError> {
        if self.depth > 32 {
            return Err(TraceError::Other("the model nests too deeply".into()));
        }
        let slot = RefCell::new(None);
        let v = seed.deserialize(Tracer {
            out: &slot,
            omit: self.omit,
            depth: self.depth + 1,
        })?;
        let shape = slot
            .into_inner()
            .ok_or_else(|| TraceError::Other("a nested value traced nothing".into()))?;
        Ok((v, shape))
    }
}

macro_rules! trace_int {
    ($($method:ident $visit:ident $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
            self.set(Shape::Int { min: <$ty>::MIN as i128, max: <$ty>::MAX as i128 });
            visitor.$visit(0)
        }
    )*};
}

macro_rules! unsupported {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, TraceError> {
            Err(TraceError::Other(concat!("the model uses ", stringify!($method),
                ", which validation does not know").into()))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Tracer<'_> {
    type Error = TraceError;

    trace_int!(
        deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64,
        deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16,
        deserialize_i32 visit_i32 i32, deserialize_i64 visit_i64 i64
    );
    unsupported!(
        deserialize_char,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_unit,
        deserialize_ignored_any
    );

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.set(Shape::Any);
        visitor.visit_unit()
    }
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.set(Shape::Bool);
        visitor.visit_bool(false)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.set(Shape::Float);
        visitor.visit_f32(0.0)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.set(Shape::Float);
        visitor.visit_f64(0.0)
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.set(Shape::Str);
        visitor.visit_str("")
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.set(Shape::Str);
        visitor.visit_string(String::new())
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.set(Shape::Str);
        visitor.visit_str("")
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let slot = RefCell::new(None);
        let v = visitor.visit_some(Tracer {
            out: &slot,
            omit: self.omit,
            depth: self.depth + 1,
        })?;
        let inner = slot
            .into_inner()
            .ok_or_else(|| TraceError::Other("an option traced nothing".into()))?;
        self.set(Shape::Option(Box::new(inner)));
        Ok(v)
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, TraceError> {
        Err(TraceError::Other("unit structs are not supported".into()))
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let mut acc = SeqTrace {
            tracer: &self,
            item: None,
        };
        let v = visitor.visit_seq(&mut acc)?;
        let item = acc
            .item
            .ok_or_else(|| TraceError::Other("a sequence traced no item".into()))?;
        self.set(Shape::Seq(Box::new(item)));
        Ok(v)
    }
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, TraceError> {
        Err(TraceError::Other("tuples are not supported".into()))
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, TraceError> {
        Err(TraceError::Other("tuple structs are not supported".into()))
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        let mut acc = MapTrace {
            tracer: &self,
            state: 0,
            value: None,
        };
        let v = visitor.visit_map(&mut acc)?;
        let value = acc
            .value
            .ok_or_else(|| TraceError::Other("a map traced no value".into()))?;
        self.set(Shape::Map(Box::new(value)));
        Ok(v)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let mut acc = StructTrace {
            tracer: &self,
            name,
            fields,
            next: 0,
            traced: Vec::new(),
        };
        let v = visitor.visit_map(&mut acc)?;
        self.set(Shape::Struct(StructShape {
            name,
            fields: acc.traced,
        }));
        Ok(v)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        let first = *variants
            .first()
            .ok_or_else(|| TraceError::Other("an enum without variants".into()))?;
        self.set(Shape::Enum(variants));
        visitor.visit_enum(EnumTrace { variant: first })
    }
}

struct SeqTrace<'t, 'a> {
    tracer: &'t Tracer<'a>,
    item: Option<Shape>,
}

impl<'de> de::SeqAccess<'de> for SeqTrace<'_, '_> {
    type Error = TraceError;
    fn next_element_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, TraceError> {
        if self.item.is_some() {
            return Ok(None);
        }
        let (v, shape) = self.tracer.nested(seed)?;
        self.item = Some(shape);
        Ok(Some(v))
    }
}

struct MapTrace<'t, 'a> {
    tracer: &'t Tracer<'a>,
    state: u8,
    value: Option<Shape>,
}

impl<'de> de::MapAccess<'de> for MapTrace<'_, '_> {
    type Error = TraceError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TraceError> {
        if self.state > 0 {
            return Ok(None);
        }
        self.state = 1;
        let (k, key_shape) = self.tracer.nested(seed)?;
        if key_shape != Shape::Str {
            return Err(TraceError::Other("maps must have string keys".into()));
        }
        Ok(Some(k))
    }
    fn next_value_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, TraceError> {
        let (v, shape) = self.tracer.nested(seed)?;
        self.value = Some(shape);
        Ok(v)
    }
}

struct StructTrace<'t, 'a> {
    tracer: &'t Tracer<'a>,
    name: &'static str,
    fields: &'static [&'static str],
    next: usize,
    traced: Vec<FieldShape>,
}

impl<'de> de::MapAccess<'de> for StructTrace<'_, '_> {
    type Error = TraceError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TraceError> {
        while let Some(field) = self.fields.get(self.next) {
            if self.tracer.omit == Some((self.name, field)) {
                self.next += 1;
                continue;
            }
            let key: de::value::StrDeserializer<'_, TraceError> = field.into_deserializer();
            return seed.deserialize(key).map(Some);
        }
        Ok(None)
    }
    fn next_value_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, TraceError> {
        let name = self.fields[self.next];
        self.next += 1;
        let (v, shape) = self.tracer.nested(seed)?;
        self.traced.push(FieldShape {
            name,
            shape,
            required: false,
        });
        Ok(v)
    }
}

struct EnumTrace {
    variant: &'static str,
}

impl<'de> de::EnumAccess<'de> for EnumTrace {
    type Error = TraceError;
    type Variant = UnitOnly;
    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, UnitOnly), TraceError> {
        let key: de::value::StrDeserializer<'_, TraceError> = self.variant.into_deserializer();
        Ok((seed.deserialize(key)?, UnitOnly))
    }
}

struct UnitOnly;

impl<'de> de::VariantAccess<'de> for UnitOnly {
    type Error = TraceError;
    fn unit_variant(self) -> Result<(), TraceError> {
        Ok(())
    }
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        _seed: S,
    ) -> Result<S::Value, TraceError> {
        Err(TraceError::Other(
            "only unit enum variants are supported".into(),
        ))
    }
    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, TraceError> {
        Err(TraceError::Other(
            "only unit enum variants are supported".into(),
        ))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, TraceError> {
        Err(TraceError::Other(
            "only unit enum variants are supported".into(),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Checking a located tree against a shape.

/// Struct whose values are secrets: nothing under it is ever quoted in a message.
const SECRET_STRUCT: &str = "SecretSource";

/// Checks `root` against `shape`. Returns the value as JSON typed by the shape (unknown fields
/// left out) when nothing blocking was found, and every problem found.
pub fn check(root: &Node, shape: &Shape) -> (Option<Json>, Vec<Problem>) {
    let mut c = Checker {
        problems: Vec::new(),
    };
    let v = c.node(root, shape, &FieldPath::root(), false);
    (v, c.problems)
}

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, pos: Pos, path: &FieldPath, message: String, blocking: bool) {
        self.problems.push(Problem {
            pos,
            path: path.clone(),
            message,
            blocking,
        });
    }

    fn mismatch(&mut self, node: &Node, path: &FieldPath, expected: &str, secret: bool) {
        let msg = format!("expected {expected}, found {}", node.describe(!secret));
        self.problem(node.pos, path, msg, true);
    }

    fn node(&mut self, node: &Node, shape: &Shape, path: &FieldPath, secret: bool) -> Option<Json> {
        let scalar = node.scalar();
        match shape {
            Shape::Option(inner) => match scalar {
                Some(Scalar::Null) => Some(Json::Null),
                _ => self.node(node, inner, path, secret),
            },
            Shape::Any => self.any(node, path, secret),
            Shape::Str => match (&node.value, scalar) {
                (_, Some(Scalar::Null)) | (Value::Seq(_) | Value::Map(_), _) => {
                    self.mismatch(node, path, "a string", secret);
                    None
                }
                (Value::Scalar { text, .. }, _) => Some(Json::String(text.clone())),
            },
            Shape::Bool => match scalar {
                Some(Scalar::Bool(b)) => Some(Json::Bool(b)),
                Some(Scalar::Str(s))
                    if matches!(
                        s.to_ascii_lowercase().as_str(),
                        "yes" | "no" | "on" | "off" | "y" | "n"
                    ) && !secret =>
                {
                    let msg = format!(
                        "expected true or false, found {s:?} (YAML 1.1 booleans such as yes/no \
                         are not accepted)"
                    );
                    self.problem(node.pos, path, msg, true);
                    None
                }
                _ => {
                    self.mismatch(node, path, "true or false", secret);
                    None
                }
            },
            Shape::Int { min, max } => match scalar {
                Some(Scalar::Int(i)) if i >= *min && i <= *max => Some(int_json(i)),
                Some(Scalar::Int(i)) if !secret => {
                    let msg = format!("{i} is out of range: expected {}", int_desc(*min, *max));
                    self.problem(node.pos, path, msg, true);
                    None
                }
                _ => {
                    self.mismatch(node, path, &int_desc(*min, *max), secret);
                    None
                }
            },
            Shape::Float => match scalar {
                Some(Scalar::Int(i)) => Some(int_json(i)),
                Some(Scalar::Float(f)) if f.is_finite() => {
                    serde_json::Number::from_f64(f).map(Json::Number)
                }
                _ => {
                    self.mismatch(node, path, "a number", secret);
                    None
                }
            },
            Shape::Enum(variants) => {
                let expected = one_of(variants);
                match (&node.value, scalar) {
                    (Value::Scalar { text, .. }, Some(s)) if s != Scalar::Null => {
                        if variants.contains(&text.as_str()) {
                            Some(Json::String(text.clone()))
                        } else {
                            let mut msg = format!("{text:?} is not allowed: use {expected}");
                            if let Some(m) = did_you_mean(text, variants) {
                                msg = format!(
                                    "{text:?} is not allowed; did you mean `{m}`? (use {expected})"
                                );
                            }
                            if secret {
                                msg = format!("use {expected}");
                            }
                            self.problem(node.pos, path, msg, true);
                            None
                        }
                    }
                    _ => {
                        self.mismatch(node, path, &expected, secret);
                        None
                    }
                }
            }
            Shape::Seq(item) => match &node.value {
                Value::Seq(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    let mut ok = true;
                    for (i, it) in items.iter().enumerate() {
                        match self.node(it, item, &path.i(i), secret) {
                            Some(v) => out.push(v),
                            None => ok = false,
                        }
                    }
                    ok.then_some(Json::Array(out))
                }
                _ => {
                    let hint = if scalar == Some(Scalar::Null) {
                        "a list (write [] for an empty one)"
                    } else {
                        "a list"
                    };
                    self.mismatch(node, path, hint, secret);
                    None
                }
            },
            Shape::Map(value) => match &node.value {
                Value::Map(entries) => {
                    let mut out = serde_json::Map::new();
                    let mut ok = true;
                    for e in entries {
                        match self.node(&e.value, value, &path.k(&e.key), secret) {
                            Some(v) => {
                                out.insert(e.key.clone(), v);
                            }
                            None => ok = false,
                        }
                    }
                    ok.then_some(Json::Object(out))
                }
                _ => {
                    self.mismatch(node, path, "a mapping", secret);
                    None
                }
            },
            Shape::Struct(st) => self.structure(node, st, path, secret),
        }
    }

    fn structure(
        &mut self,
        node: &Node,
        st: &StructShape,
        path: &FieldPath,
        secret: bool,
    ) -> Option<Json> {
        let secret = secret || st.name == SECRET_STRUCT;
        let Value::Map(entries) = &node.value else {
            let expected = if st.name == SECRET_STRUCT {
                "a mapping with one of `env`, `file` or `value`".to_string()
            } else if node.scalar() == Some(Scalar::Null) {
                "a mapping (remove the key, or write {} for an empty one)".to_string()
            } else {
                "a mapping".to_string()
            };
            self.mismatch(node, path, &expected, secret);
            return None;
        };
        let names = st.names();
        let mut out = serde_json::Map::new();
        let mut ok = true;
        for e in entries {
            match st.field(&e.key) {
                Some(f) => match self.node(&e.value, &f.shape, &path.k(&e.key), secret) {
                    Some(v) => {
                        out.insert(e.key.clone(), v);
                    }
                    None => ok = false,
                },
                None => {
                    let suggestion = did_you_mean(&e.key, &names);
                    let (p, msg) = match (suggestion, secret) {
                        (Some(m), _) => (
                            path.k(&e.key),
                            format!("unknown field `{}`; did you mean `{m}`?", e.key),
                        ),
                        // Under a secret an unknown key could be the secret itself: not shown.
                        (None, true) => (
                            path.clone(),
                            format!("unknown field (not shown); expected {}", one_of(&names)),
                        ),
                        (None, false) => (
                            path.k(&e.key),
                            format!("unknown field `{}`; expected {}", e.key, one_of(&names)),
                        ),
                    };
                    self.problem(e.key_pos, &p, msg, false);
                }
            }
        }
        for f in &st.fields {
            if f.required && !entries.iter().any(|e| e.key == f.name) {
                let msg = format!("missing required field `{}`", f.name);
                self.problem(node.pos, &path.k(f.name), msg, true);
                ok = false;
            }
        }
        ok.then_some(Json::Object(out))
    }

    fn any(&mut self, node: &Node, path: &FieldPath, secret: bool) -> Option<Json> {
        match &node.value {
            Value::Seq(items) => {
                let mut out = Vec::new();
                let mut ok = true;
                for (i, it) in items.iter().enumerate() {
                    match self.any(it, &path.i(i), secret) {
                        Some(v) => out.push(v),
                        None => ok = false,
                    }
                }
                ok.then_some(Json::Array(out))
            }
            Value::Map(entries) => {
                let mut out = serde_json::Map::new();
                let mut ok = true;
                for e in entries {
                    match self.any(&e.value, &path.k(&e.key), secret) {
                        Some(v) => {
                            out.insert(e.key.clone(), v);
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(Json::Object(out))
            }
            Value::Scalar { text, .. } => match node.scalar() {
                Some(Scalar::Null) => Some(Json::Null),
                Some(Scalar::Bool(b)) => Some(Json::Bool(b)),
                Some(Scalar::Int(i)) => match i64::try_from(i) {
                    Ok(v) => Some(Json::from(v)),
                    Err(_) => match u64::try_from(i) {
                        Ok(v) => Some(Json::from(v)),
                        Err(_) => {
                            self.problem(node.pos, path, format!("{text} is too large"), true);
                            None
                        }
                    },
                },
                Some(Scalar::Float(f)) => match serde_json::Number::from_f64(f) {
                    Some(n) => Some(Json::Number(n)),
                    None => {
                        let msg = if secret {
                            "expected a finite number".to_string()
                        } else {
                            format!("{text} is not a finite number")
                        };
                        self.problem(node.pos, path, msg, true);
                        None
                    }
                },
                _ => Some(Json::String(text.clone())),
            },
        }
    }
}

/// "an integer 0-65535", or friendlier words for the very wide types.
fn int_desc(min: i128, max: i128) -> String {
    if min == 0 && max >= i128::from(u32::MAX) {
        "a whole number (0 or more)".into()
    } else if min <= i128::from(i32::MIN) && max >= i128::from(i32::MAX) {
        "an integer".into()
    } else {
        format!("an integer {min}-{max}")
    }
}

fn int_json(i: i128) -> Json {
    match i64::try_from(i) {
        Ok(v) => Json::from(v),
        // The shape's range was checked: anything else fits u64.
        Err(_) => Json::from(u64::try_from(i).unwrap_or(u64::MAX)),
    }
}

/// "one of `a`, `b` or `c`" (or "`a`" for a single choice).
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => "nothing".into(),
        [one] => format!("`{one}`"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|n| format!("`{n}`")).collect();
            format!("one of {} or `{last}`", init.join(", "))
        }
    }
}

/// The candidate `word` was most likely meant to be, if one is close enough: same letters
/// ignoring case and `-`/`_`, or a small edit distance for its length.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let w = norm(word);
    if w.is_empty() {
        return None;
    }
    let mut best: Option<(usize, &'a str)> = None;
    for &c in candidates {
        let d = strsim::damerau_levenshtein(&w, &norm(c));
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    let limit = match w.chars().count().max(c.len()) {
        0..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    if d == 0 {
        (c != word).then_some(c)
    } else {
        (d <= limit).then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::located::parse;

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
            Shape::Seq(Box::new(Shape::Enum(&["rabbitmq", "loadbalancer"])))
        );
        let cookie = fields(&inv.field("cookie").unwrap().shape);
        assert_eq!(cookie.name, SECRET_STRUCT);
        assert_eq!(cookie.names(), ["env", "file", "value"]);
        assert!(cookie.fields.iter().all(|f| !f.required));
    }

    #[test]
    fn did_you_mean_finds_near_misses_only() {
        let c = ["name", "address", "roles", "node_type", "priority"];
        assert_eq!(did_you_mean("adress", &c), Some("address"));
        assert_eq!(did_you_mean("Address", &c), Some("address"));
        assert_eq!(did_you_mean("node-type", &c), Some("node_type"));
        assert_eq!(did_you_mean("role", &c), Some("roles"));
        assert_eq!(did_you_mean("priorty", &c), Some("priority"));
        assert_eq!(did_you_mean("hostname", &c), None);
        assert_eq!(did_you_mean("x", &c), None);
        assert_eq!(did_you_mean("", &c), None);
        assert_eq!(did_you_mean("name", &c), None);
    }

    #[test]
    fn checker_reports_everything_at_once() {
        let shape = inventory_shape();
        let doc = "cluster: {name: x, nmae: y}\ncookie: {env: C}\nrabbitmq:\n  seed: a\n  amqp_port: nope\n\
                   nodes:\n  - name: a\n    adress: 10.0.0.1\n    roles: [rabbitmq, dancer]\n";
        let root = parse(doc).unwrap().root.unwrap();
        let (json, problems) = check(&root, shape);
        assert!(json.is_none());
        let got: Vec<String> = problems
            .iter()
            .map(|p| format!("{}@{}: {}", p.path, p.pos.line, p.message))
            .collect();
        let expect = [
            "cluster.nmae@1: unknown field `nmae`; did you mean `name`?",
            "rabbitmq.amqp_port@5: expected an integer 0-65535, found the string \"nope\"",
            "nodes[0].adress@8: unknown field `adress`; did you mean `address`?",
            "nodes[0].roles[1]@9: \"dancer\" is not allowed: use one of `rabbitmq` or `loadbalancer`",
            "nodes[0].address@7: missing required field `address`",
        ];
        assert_eq!(got, expect);
    }

    #[test]
    fn secrets_are_never_quoted() {
        let shape = inventory_shape();
        let doc = "cookie: hunter2\n";
        let root = parse(doc).unwrap().root.unwrap();
        let (_, problems) = check(&root, shape);
        let all: String = problems
            .iter()
            .map(|p| format!("{} {}\n", p.path, p.message))
            .collect();
        assert!(
            all.contains("cookie expected a mapping with one of"),
            "{all}"
        );
        assert!(!all.contains("hunter2"), "{all}");
        let doc = "cookie: {hunter2: 1}\n";
        let root = parse(doc).unwrap().root.unwrap();
        let (_, problems) = check(&root, shape);
        let all: String = problems
            .iter()
            .map(|p| format!("{} {}\n", p.path, p.message))
            .collect();
        assert!(!all.contains("hunter2"), "{all}");
        assert!(all.contains("unknown field (not shown)"), "{all}");
        let doc = "cookie: {value: [hunter2]}\n";
        let root = parse(doc).unwrap().root.unwrap();
        let (_, problems) = check(&root, shape);
        let all: String = problems
            .iter()
            .map(|p| format!("{} {}\n", p.path, p.message))
            .collect();
        assert!(!all.contains("hunter2"), "{all}");
    }
}
