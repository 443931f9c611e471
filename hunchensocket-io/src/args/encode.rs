//! Serializing into event arguments: byte strings become placeholders and attachments.

use super::*;
/// How the top-level value maps to arguments.
#[derive(Clone, Copy)]
pub(super) enum Shape {
    One,
    Spread,
    None,
}

pub(super) struct State {
    pub(super) attachments: Vec<Bytes>,
    pub(super) shape: Shape,
}

/// Serializes into a [`Value`], turning byte strings into placeholders.
pub(super) struct Ser<'a> {
    pub(super) state: &'a mut State,
    /// Whether this is the top-level value, whose tuples spread into arguments.
    pub(super) top: bool,
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
pub(super) struct SeqSer<'a> {
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
pub(super) struct VariantSeqSer<'a> {
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
pub(super) struct MapSer<'a> {
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
pub(super) struct VariantMapSer<'a> {
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
