//! The tracing deserializer: runs a type's own `Deserialize` and records what it asks for,
//! which is the type's [`Shape`]. A second pass leaves out one field at a time to learn which
//! fields are required.

use super::{FieldShape, Shape, StructShape};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use std::cell::RefCell;

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
