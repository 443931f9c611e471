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

mod decode;
mod encode;

use decode::Args;
use encode::{Ser, Shape, State};

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
