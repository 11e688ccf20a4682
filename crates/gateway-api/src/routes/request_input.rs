//! Request input whose errors name the offending field, answered as 400 with the service's error body:
//! JSON bodies (`ads[2].clicks: invalid type ...`) and query strings (`limit: invalid digit found in
//! string`; the framework's own extractor answers those in plain text, naming no field). Text holding a NUL
//! character is refused here too: Postgres cannot store one, and it is never meaningful input.

use std::collections::BTreeMap;
use std::fmt::{self, Display};
use std::marker::PhantomData;

use adloop_service_kit::error::ServiceError;
use axum::body::Bytes;
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};

const NUL_RULE: &str = "must not contain a NUL character";

pub fn parse_json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ServiceError> {
    // Every body is an object: serde would also read a struct from an array by position (`[null, null]` was
    // an empty pause request that paused the tenant).
    let first_byte = body.iter().find(|byte| !byte.is_ascii_whitespace());
    if first_byte.is_some_and(|byte| *byte != b'{') {
        return Err(ServiceError::invalid_field("body", "must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed: T = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(parsed) => parsed,
        Err(error) if error.inner().to_string().starts_with("invalid type: floating point") => {
            with_whole_floats_as_integers(body).ok_or_else(|| invalid_input(error, "body"))??
        }
        Err(error) => return Err(invalid_input(error, "body")),
    };
    // JSON can carry a NUL only escaped; only then is the body looked at again, to name the field.
    if body.windows(6).any(|window| window.eq_ignore_ascii_case(b"\\u0000")) {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        if let Some(field) = path_to_text_with_nul(&value, "") {
            return Err(ServiceError::invalid_field(field, NUL_RULE));
        }
    }
    Ok(parsed)
}

/// A field with a default that reads `null` as absent, as every optional field does: clients that write
/// every field of their own type (Jackson's default, Go structs without `omitempty`) send nulls for what
/// they leave unset. For `#[serde(default, deserialize_with = "null_as_default")]`.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A nested struct read from a JSON object only. serde also reads a struct from an array by position
/// (`"constraints": [0, 0, 0.5]` as floor, cap and change limit), which no client means and which would
/// take a reordered or shortened list for something else. The body itself is held to an object by
/// [`parse_json_body`], its nested structs by these field helpers (`optional_object`, `objects`,
/// `objects_or_null_as_empty`, `objects_by_key`). A null reads as absent where the field has a default, as
/// everywhere.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData)).map(Object)
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// For an optional nested struct: `#[serde(default, deserialize_with = "optional_object")]`.
pub fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Object<T>>::deserialize(deserializer)?.map(|Object(value)| value))
}

/// For a required list of nested structs.
pub fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let listed = Vec::<Object<T>>::deserialize(deserializer)?;
    Ok(listed.into_iter().map(|Object(value)| value).collect())
}

/// For a list of nested structs with a default (null: empty).
pub fn objects_or_null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let listed = Option::<Vec<Object<T>>>::deserialize(deserializer)?.unwrap_or_default();
    Ok(listed.into_iter().map(|Object(value)| value).collect())
}

/// For nested structs by key, with a default (null: empty).
pub fn objects_by_key<'de, D, T>(deserializer: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let keyed = Option::<BTreeMap<String, Object<T>>>::deserialize(deserializer)?.unwrap_or_default();
    Ok(keyed.into_iter().map(|(key, Object(value))| (key, value)).collect())
}

/// The body again with every whole number written as a float (`426084.0`, as JSON Schema counts it an integer
/// and many clients' float arithmetic writes it) read as the integer it is; `None` when the body has none, so
/// the first error stands. A fraction where an integer belongs is still refused by its field.
fn with_whole_floats_as_integers<T: DeserializeOwned>(body: &Bytes) -> Option<Result<T, ServiceError>> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if !whole_floats_to_integers(&mut value) {
        return None;
    }
    Some(serde_path_to_error::deserialize(value).map_err(|error| invalid_input(error, "body")))
}

/// Rewrites whole-number floats within the i64 range as integers; whether any was.
pub(super) fn whole_floats_to_integers(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(number) if number.is_f64() => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            let whole = float.fract() == 0.0 && float.abs() < 9.0e18;
            if whole {
                *value = serde_json::Value::from(float as i64);
            }
            whole
        }
        serde_json::Value::Array(items) => rewrite_each(items.iter_mut()),
        serde_json::Value::Object(fields) => rewrite_each(fields.values_mut()),
        _ => false,
    }
}

/// [`whole_floats_to_integers`] on every value (no short circuit); whether any was rewritten.
fn rewrite_each<'a>(values: impl Iterator<Item = &'a mut serde_json::Value>) -> bool {
    values.fold(false, |any, value| whole_floats_to_integers(value) | any)
}

/// The path (`ads[2].ad_id`) of the first key or string in `value` that holds a NUL character.
fn path_to_text_with_nul(value: &serde_json::Value, path: &str) -> Option<String> {
    let name = |path: &str| {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }
    };
    match value {
        serde_json::Value::String(text) if text.contains('\0') => Some(name(path)),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| path_to_text_with_nul(item, &format!("{}[{index}]", name(path)))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let field_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                Some(name(path))
            } else {
                path_to_text_with_nul(item, &field_path)
            }
        }),
        _ => None,
    }
}

/// Parses a route's query string (absent: no parameters) into `T`.
pub fn parse_query<T: DeserializeOwned>(raw_query: Option<&str>) -> Result<T, ServiceError> {
    let parameters = form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes());
    if let Some((name, _)) = parameters
        .clone()
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
    {
        let field = if name.contains('\0') {
            "query".to_owned()
        } else {
            name.into_owned()
        };
        return Err(ServiceError::invalid_field(field, NUL_RULE));
    }
    let deserializer = serde_urlencoded::Deserializer::new(parameters);
    serde_path_to_error::deserialize(deserializer).map_err(|error| invalid_input(error, "query"))
}

/// The error named by the path to the offending field (an unknown one names itself), or `whole` (the
/// body, the query) when the input as a whole is wrong (a body that is not JSON).
fn invalid_input<E: Display>(error: serde_path_to_error::Error<E>, whole: &str) -> ServiceError {
    let path = error.path().to_string();
    let field = if path == "." || path.is_empty() {
        whole.to_owned()
    } else {
        path
    };
    ServiceError::invalid_field(field, error.inner().to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Query {
        object: Option<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        ads: Vec<serde_json::Value>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Budget {
        amount: i64,
        #[serde(default)]
        limits: Vec<u32>,
        share: f64,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Defaults {
        #[serde(default, deserialize_with = "null_as_default")]
        reason: String,
        #[serde(default, deserialize_with = "null_as_default")]
        features: BTreeMap<String, f64>,
        #[serde(default, deserialize_with = "null_as_default")]
        needs_approval: bool,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Limits {
        floor: i64,
        #[serde(default)]
        share: f64,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Nested {
        #[serde(default, deserialize_with = "optional_object")]
        limits: Option<Limits>,
        #[serde(default, deserialize_with = "objects_or_null_as_empty")]
        listed: Vec<Limits>,
        #[serde(default, deserialize_with = "objects")]
        required: Vec<Limits>,
        #[serde(default, deserialize_with = "objects_by_key")]
        keyed: BTreeMap<String, Limits>,
    }

    #[test]
    fn a_nested_struct_is_read_from_an_object_never_from_an_array_by_position() {
        let fine = Bytes::from_static(
            br#"{"limits": {"floor": 1.0, "share": 0.5}, "listed": [{"floor": 2}], "keyed": {"a": {"floor": 3}}, "required": [{"floor": 4}]}"#,
        );
        let parsed = parse_json_body::<Nested>(&fine).unwrap();
        assert_eq!(
            (
                parsed.limits.map(|limits| (limits.floor, limits.share)),
                parsed.listed[0].floor,
                parsed.keyed["a"].floor,
                parsed.required[0].floor
            ),
            (Some((1, 0.5)), 2, 3, 4)
        );
        let nulls = parse_json_body::<Nested>(&Bytes::from_static(
            br#"{"limits": null, "listed": null, "keyed": null}"#,
        ))
        .unwrap();
        assert!(nulls.limits.is_none() && nulls.listed.is_empty() && nulls.keyed.is_empty());
        for (text, field) in [
            (r#"{"limits": [1, 0.5]}"#, "limits"),
            (r#"{"listed": [{"floor": 1}, [2]]}"#, "listed[1]"),
            (r#"{"keyed": {"a": [3]}}"#, "keyed.a"),
            (r#"{"listed": [{"floor": 1, "extra": 2}]}"#, "listed[0].extra"),
            (r#"{"limits": {"floor": "one"}}"#, "limits.floor"),
            (r#"{"required": null}"#, "required"),
            (r#"{"required": [[1]]}"#, "required[0]"),
        ] {
            let error = parse_json_body::<Nested>(&Bytes::from(text.to_owned())).unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field), "{text}: {error:?}");
        }
        let error = parse_json_body::<Nested>(&Bytes::from_static(br#"{"limits": [1]}"#)).unwrap_err();
        assert!(error.message.contains("expected a JSON object"), "{}", error.message);
    }

    #[test]
    fn a_body_is_an_object_never_an_array_read_by_position() {
        for text in ["[null, null, null]", "[]", "  [\"r\"]", "42", "\"text\""] {
            let error = parse_json_body::<Defaults>(&Bytes::from(text.to_owned())).unwrap_err();
            assert_eq!(error.field.as_deref(), Some("body"), "{text}");
        }
        assert!(parse_json_body::<Defaults>(&Bytes::from_static(b" {}")).is_ok());
    }

    #[test]
    fn a_null_is_an_absent_field_where_the_field_has_a_default() {
        let body = Bytes::from_static(br#"{"reason": null, "features": null, "needs_approval": null}"#);
        let parsed = parse_json_body::<Defaults>(&body).unwrap();
        assert_eq!(
            (parsed.reason.as_str(), parsed.features.len(), parsed.needs_approval),
            ("", 0, false)
        );
        let given = Bytes::from_static(br#"{"reason": "r", "features": {"a": 1}, "needs_approval": true}"#);
        let parsed = parse_json_body::<Defaults>(&given).unwrap();
        assert_eq!(
            (parsed.reason.as_str(), parsed.features.len(), parsed.needs_approval),
            ("r", 1, true)
        );
        let wrong = Bytes::from_static(br#"{"needs_approval": "yes"}"#);
        assert_eq!(
            parse_json_body::<Defaults>(&wrong).unwrap_err().field.as_deref(),
            Some("needs_approval")
        );
    }

    #[test]
    fn a_whole_number_written_as_a_float_is_read_as_the_integer_and_a_fraction_is_refused() {
        let body = Bytes::from_static(br#"{"amount": 426084.0, "limits": [3, 4.0], "share": 2.0}"#);
        let budget = parse_json_body::<Budget>(&body).unwrap();
        assert_eq!((budget.amount, budget.limits, budget.share), (426_084, vec![3, 4], 2.0));
        let fraction = Bytes::from_static(br#"{"amount": 426084.5, "share": 0.5}"#);
        let error = parse_json_body::<Budget>(&fraction).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("amount"));
        let negative_limit = Bytes::from_static(br#"{"amount": 1.0, "limits": [-1.0], "share": 0.5}"#);
        assert_eq!(
            parse_json_body::<Budget>(&negative_limit).unwrap_err().field.as_deref(),
            Some("limits[0]")
        );
    }

    #[test]
    fn a_nul_character_anywhere_is_refused_naming_its_field() {
        let error = parse_query::<Query>(Some("object=a%00b")).unwrap_err();
        assert_eq!(
            (error.field.as_deref(), error.message.as_str()),
            (Some("object"), "object: must not contain a NUL character")
        );
        assert!(parse_query::<Query>(Some("object=ab")).is_ok());
        let body = Bytes::from_static(br#"{"ads": [{"ad_id": "fine"}, {"ad_id": "bad\u0000"}]}"#);
        let error = parse_json_body::<Body>(&body).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("ads[1].ad_id"));
        let fine = Bytes::from_static(br#"{"ads": [{"ad_id": "a\\u0000 spelled out"}]}"#);
        assert!(
            parse_json_body::<Body>(&fine).is_ok(),
            "an escaped backslash is not a NUL"
        );
    }
}
