//! Tests of `args`.

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
        from_args::<File>(vec![json!({"name": 1, "data": placeholder(0)})], &[b(b"x")]).is_err()
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
