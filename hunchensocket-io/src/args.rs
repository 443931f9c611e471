//! Event arguments to and from serde types, with binary data carried as attachments.
//!
//! Socket.IO sends binary data out of band: inside the JSON arguments each byte string is a
//! placeholder `{"_placeholder":true,"num":N}`, and the bytes follow as attachment `N`.
//! [`to_args`] makes the placeholders from every byte string a value serializes (with
//! `serialize_bytes`, as [`Bytes`] does), and [`from_args`] gives the attachments back wherever
//! the target type asks for bytes.
//!
//! A plain `Vec<u8>` serializes as a sequence of numbers, not as bytes: use [`Bytes`] (or
//! `serde_bytes`) for binary data.

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};
use serde::{Deserializer, Serializer, forward_to_deserialize_any};
use serde_json::{Map, Value};

type Error = serde_json::Error;

/// The placeholder that stands for attachment `num` in the JSON arguments.
pub fn placeholder(num: usize) -> Value {
    let mut map = Map::new();
    map.insert("_placeholder".into(), Value::Bool(true));
    map.insert("num".into(), num.into());
    Value::Object(map)
}

/// The attachment number of a placeholder, or `None` when `value` is not one.
pub fn placeholder_num(value: &Value) -> Option<usize> {
    let map = value.as_object()?;
    if map.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    usize::try_from(map.get("num")?.as_u64()?).ok()
}

/// Serializes `value` into Socket.IO event arguments and their binary attachments.
///
/// A tuple (or tuple struct) at the top spreads into several arguments, `()` (or a unit struct)
/// gives none, and anything else is one argument. Every byte string anywhere inside becomes a
/// placeholder, and its bytes are pushed to the attachments, numbered in order.
///
/// ```
/// use bytes::Bytes;
/// use hunchensocket_io::args::to_args;
/// use serde_json::json;
///
/// let (args, attachments) = to_args(&("upload", Bytes::from_static(b"\x01\x02"))).unwrap();
/// assert_eq!(args, [json!("upload"), json!({"_placeholder": true, "num": 0})]);
/// assert_eq!(attachments, [Bytes::from_static(b"\x01\x02")]);
/// ```
pub fn to_args<T: Serialize + ?Sized>(value: &T) -> Result<(Vec<Value>, Vec<Bytes>), Error> {
    let mut state = State {
        attachments: Vec::new(),
        shape: Shape::One,
    };
    let value = value.serialize(Ser {
        state: &mut state,
        top: true,
    })?;
    let args = match (state.shape, value) {
        (Shape::None, _) => Vec::new(),
        (Shape::Spread, Value::Array(args)) => args,
        (_, value) => vec![value],
    };
    Ok((args, state.attachments))
}

/// Deserializes Socket.IO event arguments and their attachments into `T`: the reverse of
/// [`to_args`].
///
/// A tuple (or tuple struct) target takes the arguments in order (an argument too few is an
/// error, extra ones are ignored, as a JavaScript function ignores them); `()` accepts any
/// arguments; anything else deserializes from the first argument (`null` when there is none).
/// Wherever the target asks for bytes and the JSON holds a placeholder, the attachment is
/// given; a placeholder past the last attachment is an error. Elsewhere this behaves like
/// deserializing from a [`Value`]: a placeholder read as JSON stays a JSON object.
///
/// Types that buffer their input (`#[serde(flatten)]`, untagged enums) see placeholders as
/// objects, not bytes.
pub fn from_args<T: DeserializeOwned>(args: Vec<Value>, attachments: &[Bytes]) -> Result<T, Error> {
    T::deserialize(Args { args, attachments })
}

// ---------------------------------------------------------------------------------------------
// Serializing

/// How the top-level value maps to arguments.
#[derive(Clone, Copy)]
enum Shape {
    One,
    Spread,
    None,
}

struct State {
    attachments: Vec<Bytes>,
    shape: Shape,
}

/// Serializes into a [`Value`], turning byte strings into placeholders.
struct Ser<'a> {
    state: &'a mut State,
    /// Whether this is the top-level value, whose tuples spread into arguments.
    top: bool,
}

fn nested<T: Serialize + ?Sized>(state: &mut State, value: &T) -> Result<Value, Error> {
    value.serialize(Ser { state, top: false })
}

fn map_key<K: Serialize + ?Sized>(key: &K) -> Result<String, Error> {
    match key.serialize(serde_json::value::Serializer)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ser::Error::custom("a map key must be a string")),
    }
}

fn single(key: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    Value::Object(map)
}

macro_rules! leaves {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method(self, v: $ty) -> Result<Value, Error> {
            serde_json::value::Serializer.$method(v)
        }
    )*};
}

impl<'a> Serializer for Ser<'a> {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = SeqSer<'a>;
    type SerializeTuple = SeqSer<'a>;
    type SerializeTupleStruct = SeqSer<'a>;
    type SerializeTupleVariant = VariantSeqSer<'a>;
    type SerializeMap = MapSer<'a>;
    type SerializeStruct = MapSer<'a>;
    type SerializeStructVariant = VariantMapSer<'a>;

    leaves! {
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_i128(i128), serialize_u8(u8), serialize_u16(u16),
        serialize_u32(u32), serialize_u64(u64), serialize_u128(u128), serialize_f32(f32),
        serialize_f64(f64), serialize_char(char), serialize_str(&str),
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value, Error> {
        let num = self.state.attachments.len();
        self.state.attachments.push(Bytes::copy_from_slice(v));
        Ok(placeholder(num))
    }

    fn serialize_none(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, Error> {
        nested(self.state, value)
    }

    fn serialize_unit(self) -> Result<Value, Error> {
        if self.top {
            self.state.shape = Shape::None;
        }
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, Error> {
        Ok(Value::String(variant.to_owned()))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        // A newtype is transparent, also for the top-level spreading of its tuple.
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        Ok(single(variant, nested(self.state, value)?))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer<'a>, Error> {
        Ok(SeqSer {
            state: self.state,
            items: Vec::with_capacity(len.unwrap_or(0)),
            spread: false,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<SeqSer<'a>, Error> {
        Ok(SeqSer {
            state: self.state,
            items: Vec::with_capacity(len),
            spread: self.top,
        })
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqSer<'a>, Error> {
        self.serialize_tuple(len)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSeqSer<'a>, Error> {
        Ok(VariantSeqSer {
            variant,
            seq: self.serialize_seq(Some(len))?,
        })
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<MapSer<'a>, Error> {
        Ok(MapSer {
            state: self.state,
            map: Map::new(),
            key: None,
        })
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapSer<'a>, Error> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantMapSer<'a>, Error> {
        Ok(VariantMapSer {
            variant,
            map: self.serialize_map(Some(len))?,
        })
    }
}

/// Sequences and tuples.
struct SeqSer<'a> {
    state: &'a mut State,
    items: Vec<Value>,
    /// A top-level tuple: its items become the arguments.
    spread: bool,
}

impl SeqSer<'_> {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.items.push(nested(self.state, value)?);
        Ok(())
    }

    fn finish(self) -> Value {
        if self.spread {
            self.state.shape = Shape::Spread;
        }
        Value::Array(self.items)
    }
}

impl ser::SerializeSeq for SeqSer<'_> {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SeqSer<'_> {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SeqSer<'_> {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(self.finish())
    }
}

/// `{"Variant": [items]}`.
struct VariantSeqSer<'a> {
    variant: &'static str,
    seq: SeqSer<'a>,
}

impl ser::SerializeTupleVariant for VariantSeqSer<'_> {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.seq.push(value)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(single(self.variant, self.seq.finish()))
    }
}

/// Maps and structs.
struct MapSer<'a> {
    state: &'a mut State,
    map: Map<String, Value>,
    key: Option<String>,
}

impl MapSer<'_> {
    fn insert<T: Serialize + ?Sized>(&mut self, key: String, value: &T) -> Result<(), Error> {
        let value = nested(self.state, value)?;
        self.map.insert(key, value);
        Ok(())
    }
}

impl ser::SerializeMap for MapSer<'_> {
    type Ok = Value;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(map_key(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ser::Error::custom("map value without a key"))?;
        self.insert(key, value)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::Object(self.map))
    }
}

impl ser::SerializeStruct for MapSer<'_> {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.insert(key.to_owned(), value)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::Object(self.map))
    }
}

/// `{"Variant": {fields}}`.
struct VariantMapSer<'a> {
    variant: &'static str,
    map: MapSer<'a>,
}

impl ser::SerializeStructVariant for VariantMapSer<'_> {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.map.insert(key.to_owned(), value)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(single(self.variant, Value::Object(self.map.map)))
    }
}

// ---------------------------------------------------------------------------------------------
// Deserializing

/// All the arguments: the top-level deserializer.
struct Args<'a> {
    args: Vec<Value>,
    attachments: &'a [Bytes],
}

impl<'a> Args<'a> {
    fn first(self) -> Arg<'a> {
        Arg {
            value: self.args.into_iter().next().unwrap_or(Value::Null),
            attachments: self.attachments,
        }
    }
}

macro_rules! to_first {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Error> {
            self.first().$method($($arg,)* visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for Args<'_> {
    type Error = Error;

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        // Extra arguments are left unread rather than refused.
        visitor.visit_seq(Seq {
            items: self.args.into_iter(),
            attachments: self.attachments,
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    to_first! {
        deserialize_any(), deserialize_bool(), deserialize_i8(), deserialize_i16(),
        deserialize_i32(), deserialize_i64(), deserialize_i128(), deserialize_u8(),
        deserialize_u16(), deserialize_u32(), deserialize_u64(), deserialize_u128(),
        deserialize_f32(), deserialize_f64(), deserialize_char(), deserialize_str(),
        deserialize_string(), deserialize_bytes(), deserialize_byte_buf(), deserialize_option(),
        deserialize_seq(), deserialize_map(), deserialize_identifier(),
        deserialize_ignored_any(),
        deserialize_struct(name: &'static str, fields: &'static [&'static str]),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
    }
}

/// One JSON value, with the attachments its placeholders refer to.
struct Arg<'a> {
    value: Value,
    attachments: &'a [Bytes],
}

impl<'a> Arg<'a> {
    /// The attachment this value stands for, if it is a placeholder.
    fn attachment(&self) -> Option<Result<&'a Bytes, Error>> {
        let num = placeholder_num(&self.value)?;
        Some(self.attachments.get(num).ok_or_else(|| {
            de::Error::custom(format_args!(
                "placeholder for attachment {num}, but there are {}",
                self.attachments.len()
            ))
        }))
    }
}

fn visit_array<'de, V: Visitor<'de>>(
    items: Vec<Value>,
    attachments: &[Bytes],
    visitor: V,
) -> Result<V::Value, Error> {
    let len = items.len();
    let mut seq = Seq {
        items: items.into_iter(),
        attachments,
    };
    let value = visitor.visit_seq(&mut seq)?;
    match seq.items.len() {
        0 => Ok(value),
        _ => Err(de::Error::invalid_length(len, &"fewer elements in array")),
    }
}

fn visit_object<'de, V: Visitor<'de>>(
    map: Map<String, Value>,
    attachments: &[Bytes],
    visitor: V,
) -> Result<V::Value, Error> {
    let len = map.len();
    let mut object = Object {
        entries: map.into_iter(),
        value: None,
        attachments,
    };
    let value = visitor.visit_map(&mut object)?;
    match object.entries.len() {
        0 => Ok(value),
        _ => Err(de::Error::invalid_length(len, &"fewer elements in map")),
    }
}

macro_rules! to_value {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Error> {
            self.value.$method($($arg,)* visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for Arg<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Array(items) => visit_array(items, self.attachments, visitor),
            Value::Object(map) => visit_object(map, self.attachments, visitor),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.attachment() {
            Some(bytes) => visitor.visit_bytes(bytes?),
            None => self.value.deserialize_bytes(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.attachment() {
            Some(bytes) => visitor.visit_byte_buf(bytes?.to_vec()),
            None => self.value.deserialize_byte_buf(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Array(items) => visit_array(items, self.attachments, visitor),
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(map) => visit_object(map, self.attachments, visitor),
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(map) => visit_object(map, self.attachments, visitor),
            Value::Array(items) => visit_array(items, self.attachments, visitor),
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(map) if map.len() == 1 => {
                let (variant, value) = map.into_iter().next().expect("the map has one entry");
                visitor.visit_enum(Enum {
                    variant,
                    value: Arg {
                        value,
                        attachments: self.attachments,
                    },
                })
            }
            // A unit variant by name, or serde_json's own error.
            other => other.deserialize_enum(name, variants, visitor),
        }
    }

    to_value! {
        deserialize_bool(), deserialize_i8(), deserialize_i16(), deserialize_i32(),
        deserialize_i64(), deserialize_i128(), deserialize_u8(), deserialize_u16(),
        deserialize_u32(), deserialize_u64(), deserialize_u128(), deserialize_f32(),
        deserialize_f64(), deserialize_char(), deserialize_str(), deserialize_string(),
        deserialize_unit(), deserialize_identifier(), deserialize_ignored_any(),
        deserialize_unit_struct(name: &'static str),
    }
}

/// The elements of an array.
struct Seq<'a> {
    items: std::vec::IntoIter<Value>,
    attachments: &'a [Bytes],
}

impl<'de> de::SeqAccess<'de> for Seq<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.items
            .next()
            .map(|value| {
                seed.deserialize(Arg {
                    value,
                    attachments: self.attachments,
                })
            })
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of an object.
struct Object<'a> {
    entries: serde_json::map::IntoIter,
    value: Option<Value>,
    attachments: &'a [Bytes],
}

impl<'de> de::MapAccess<'de> for Object<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(Key(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("map value requested before its key"))?;
        seed.deserialize(Arg {
            value,
            attachments: self.attachments,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An externally tagged enum variant: `{"Variant": value}`.
struct Enum<'a> {
    variant: String,
    value: Arg<'a>,
}

impl<'de, 'a> de::EnumAccess<'de> for Enum<'a> {
    type Error = Error;
    type Variant = Arg<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Arg<'a>), Error> {
        let variant = seed.deserialize(Key(self.variant))?;
        Ok((variant, self.value))
    }
}

impl<'de> de::VariantAccess<'de> for Arg<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(map) => visit_object(map, self.attachments, visitor),
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a struct variant",
            )),
        }
    }
}

fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

/// An object key: a string, which may also be read as an integer or a boolean (JSON keys of a
/// `HashMap<u32, _>` are numbers in quotes).
struct Key(String);

macro_rules! parsed_key {
    ($($method:ident => $visit:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0.parse() {
                Ok(n) => visitor.$visit(n),
                Err(_) => visitor.visit_string(self.0),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for Key {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_string(self.0)
    }

    parsed_key! {
        deserialize_bool => visit_bool,
        deserialize_i8 => visit_i8, deserialize_i16 => visit_i16,
        deserialize_i32 => visit_i32, deserialize_i64 => visit_i64,
        deserialize_i128 => visit_i128, deserialize_u8 => visit_u8,
        deserialize_u16 => visit_u16, deserialize_u32 => visit_u32,
        deserialize_u64 => visit_u64, deserialize_u128 => visit_u128,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(IntoDeserializer::<Error>::into_deserializer(self.0))
    }

    forward_to_deserialize_any! {
        f32 f64 char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map
        struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    fn b(bytes: &'static [u8]) -> Bytes {
        Bytes::from_static(bytes)
    }

    /// Serializes `value`, checks the result, and checks that it deserializes back.
    fn round_trip<T>(value: &T, args: Vec<Value>, attachments: Vec<Bytes>)
    where
        T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let (a, att) = to_args(value).unwrap();
        assert_eq!(a, args);
        assert_eq!(att, attachments);
        assert_eq!(&from_args::<T>(a, &att).unwrap(), value);
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct File {
        name: String,
        data: Bytes,
        thumb: Option<Bytes>,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Pair(String, u8);

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Wrapped((String, Bytes));

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    enum Shape {
        Empty,
        Blob(Bytes),
        Parts(Bytes, u8),
        Named { data: Bytes },
    }

    #[test]
    fn tuples_spread_into_arguments() {
        round_trip(&("x".to_owned(), 1), vec![json!("x"), json!(1)], vec![]);
        round_trip(&Pair("p".into(), 2), vec![json!("p"), json!(2)], vec![]);
        round_trip(&(7,), vec![json!(7)], vec![]);
        round_trip(
            &Wrapped(("w".into(), b(b"\x00"))),
            vec![json!("w"), placeholder(0)],
            vec![b(b"\x00")],
        );
    }

    #[test]
    fn other_values_are_one_argument() {
        round_trip(&"hello".to_owned(), vec![json!("hello")], vec![]);
        round_trip(&vec![1, 2], vec![json!([1, 2])], vec![]);
        round_trip(&Some(("a".to_owned(), 1)), vec![json!(["a", 1])], vec![]);
        round_trip(&None::<u8>, vec![Value::Null], vec![]);
        // With no argument, the first one reads as null.
        assert_eq!(from_args::<Option<u8>>(vec![], &[]).unwrap(), None);
        // Arguments after the first are ignored.
        assert_eq!(
            from_args::<String>(vec![json!("a"), json!(2)], &[]).unwrap(),
            "a"
        );
    }

    #[test]
    fn unit_is_no_arguments() {
        round_trip(&(), vec![], vec![]);
        from_args::<()>(vec![json!(1), json!("x")], &[]).unwrap();
    }

    #[test]
    fn struct_with_bytes() {
        round_trip(
            &File {
                name: "a.png".into(),
                data: b(b"\x89PNG"),
                thumb: None,
            },
            vec![json!({"name": "a.png", "data": placeholder(0), "thumb": null})],
            vec![b(b"\x89PNG")],
        );
        round_trip(
            &File {
                name: "b".into(),
                data: b(b"1"),
                thumb: Some(b(b"2")),
            },
            vec![json!({"name": "b", "data": placeholder(0), "thumb": placeholder(1)})],
            vec![b(b"1"), b(b"2")],
        );
    }

    #[test]
    fn attachments_are_numbered_in_order() {
        round_trip(
            &("s".to_owned(), b(b"a"), vec![b(b"b"), b(b"c")]),
            vec![
                json!("s"),
                placeholder(0),
                json!([placeholder(1), placeholder(2)]),
            ],
            vec![b(b"a"), b(b"b"), b(b"c")],
        );
    }

    #[test]
    fn optional_bytes() {
        round_trip(&Some(b(b"x")), vec![placeholder(0)], vec![b(b"x")]);
        round_trip(&None::<Bytes>, vec![Value::Null], vec![]);
        round_trip(
            &(None::<Bytes>, Some(b(b"y"))),
            vec![Value::Null, placeholder(0)],
            vec![b(b"y")],
        );
    }

    #[test]
    fn maps_and_enums() {
        let mut map = BTreeMap::new();
        map.insert("one".to_owned(), vec![b(b"1")]);
        map.insert("two".to_owned(), vec![b(b"2"), b(b"3")]);
        round_trip(
            &map,
            vec![json!({"one": [placeholder(0)], "two": [placeholder(1), placeholder(2)]})],
            vec![b(b"1"), b(b"2"), b(b"3")],
        );

        let mut numbered = HashMap::new();
        numbered.insert(7u32, b(b"7"));
        round_trip(&numbered, vec![json!({"7": placeholder(0)})], vec![b(b"7")]);

        round_trip(
            &vec![
                Shape::Empty,
                Shape::Blob(b(b"a")),
                Shape::Parts(b(b"b"), 1),
                Shape::Named { data: b(b"c") },
            ],
            vec![json!([
                "Empty",
                {"Blob": placeholder(0)},
                {"Parts": [placeholder(1), 1]},
                {"Named": {"data": placeholder(2)}},
            ])],
            vec![b(b"a"), b(b"b"), b(b"c")],
        );
    }

    #[test]
    fn placeholders_read_as_json_stay_objects() {
        let args = vec![json!("upload"), placeholder(0)];
        let value: (String, Value) = from_args(args.clone(), &[b(b"x")]).unwrap();
        assert_eq!(value.1, json!({"_placeholder": true, "num": 0}));
        let all: Value = from_args(vec![json!([placeholder(0)])], &[]).unwrap();
        assert_eq!(all, json!([{"_placeholder": true, "num": 0}]));
    }

    #[test]
    fn errors() {
        // A placeholder past the attachments.
        let err =
            from_args::<(String, Bytes)>(vec![json!("e"), placeholder(1)], &[b(b"x")]).unwrap_err();
        assert!(err.to_string().contains("attachment 1"), "{err}");
        // Wrong types.
        assert!(from_args::<(u8,)>(vec![json!("x")], &[]).is_err());
        assert!(
            from_args::<File>(vec![json!({"name": 1, "data": placeholder(0)})], &[b(b"x")])
                .is_err()
        );
        assert!(from_args::<Bytes>(vec![json!({"_placeholder": true})], &[]).is_err());
        assert!(from_args::<Bytes>(vec![json!(true)], &[]).is_err());
        // Too few arguments for a tuple.
        assert!(from_args::<(String, u8)>(vec![json!("x")], &[]).is_err());
        // Too many elements for a nested tuple.
        assert!(from_args::<((u8,),)>(vec![json!([1, 2])], &[]).is_err());
        // A map key that is not a string.
        let mut bad = BTreeMap::new();
        bad.insert(vec![1], 1);
        assert!(to_args(&bad).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_round_trip(
            name in any::<String>(),
            blobs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), 0..4),
            n in proptest::option::of(any::<i64>()),
        ) {
            let value = (name, blobs.into_iter().map(Bytes::from).collect::<Vec<_>>(), n);
            let (args, attachments) = to_args(&value).unwrap();
            prop_assert_eq!(args.len(), 3);
            prop_assert_eq!(attachments.len(), value.1.len());
            let back: (String, Vec<Bytes>, Option<i64>) = from_args(args, &attachments).unwrap();
            prop_assert_eq!(back, value);
        }
    }
}
