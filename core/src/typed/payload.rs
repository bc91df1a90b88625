//! A whole value in one field, in a format of the caller's choice.

use serde::{Deserialize, Serialize};

use crate::error::{FieldsError, FieldsErrorKind};
use crate::fields::Fields;

/// What a [`PayloadFormat`] says went wrong (its own error, boxed).
pub type PayloadFormatError = Box<dyn std::error::Error + Send + Sync>;

/// A format for payload fields: how a value becomes bytes and back. JSON
/// is [`Json`] (feature `json`); implement this for any other (MessagePack,
/// CBOR, bincode, ...), e.g. indented JSON:
///
/// ```
/// # #[cfg(feature = "json")] {
/// use serde::{Deserialize, Serialize};
/// use xgroup_core::{Payload, PayloadFormat, PayloadFormatError};
///
/// #[derive(Debug, Clone, Copy)]
/// struct PrettyJson;
///
/// impl PayloadFormat for PrettyJson {
///     fn name(&self) -> &str {
///         "JSON"
///     }
///     fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, PayloadFormatError> {
///         Ok(serde_json::to_vec_pretty(value)?)
///     }
///     fn decode<'de, T: Deserialize<'de>>(&self, bytes: &'de [u8]) -> Result<T, PayloadFormatError> {
///         Ok(serde_json::from_slice(bytes)?)
///     }
/// }
///
/// let body = Payload::new("body", PrettyJson);
/// let fields = body.to_fields(&[1, 2])?;
/// assert_eq!(fields.get("body"), Some(&b"[\n  1,\n  2\n]"[..]));
/// assert_eq!(fields.deserialize_payload::<Vec<u8>, _>(&body)?, [1, 2]);
///
/// let broken: xgroup_core::Fields = [("body", "[1,")].into_iter().collect();
/// let e = broken.deserialize_payload::<Vec<u8>, _>(&body).unwrap_err();
/// assert!(e.to_string().starts_with(r#"field "body": invalid JSON payload: EOF"#), "{e}");
/// # }
/// # Ok::<(), xgroup_core::FieldsError>(())
/// ```
pub trait PayloadFormat {
    /// The format's name, for errors (e.g. `JSON`).
    fn name(&self) -> &str;

    /// `value` as bytes.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, PayloadFormatError>;

    /// A value read from `bytes` (it may borrow from them).
    fn decode<'de, T: Deserialize<'de>>(&self, bytes: &'de [u8]) -> Result<T, PayloadFormatError>;
}

/// A whole value in one field of an entry, named `field`, in `format`:
/// for values with nested structure, or a format other producers share.
///
/// ```
/// # #[cfg(feature = "json")] {
/// use xgroup_core::Payload;
///
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Order { id: u64, items: Vec<String> }
///
/// let payload = Payload::json("payload");
/// let order = Order { id: 7, items: vec!["widget".into()] };
/// let fields = payload.to_fields(&order)?;
/// assert_eq!(fields.get("payload"), Some(&br#"{"id":7,"items":["widget"]}"#[..]));
/// assert_eq!(fields.deserialize_payload::<Order, _>(&payload)?, order);
/// # }
/// # Ok::<(), xgroup_core::FieldsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload<F> {
    field: String,
    format: F,
}

impl<F: PayloadFormat> Payload<F> {
    /// The field `field`, in `format`.
    pub fn new(field: impl Into<String>, format: F) -> Self {
        Payload {
            field: field.into(),
            format,
        }
    }

    /// The field's name.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The format.
    pub fn format(&self) -> &F {
        &self.format
    }

    /// The entry's fields for `value`: this one field, `value` encoded.
    pub fn to_fields<T: Serialize + ?Sized>(&self, value: &T) -> Result<Fields, FieldsError> {
        let bytes = self.format.encode(value).map_err(|e| self.error(&*e))?;
        Ok([(self.field.as_bytes(), bytes)].into_iter().collect())
    }

    /// Reads the value from this field of `fields` (the first of that
    /// name); a missing field is [`FieldsErrorKind::Missing`], one the
    /// format cannot read is [`FieldsErrorKind::Payload`].
    pub fn from_fields<'de, T: Deserialize<'de>>(
        &self,
        fields: &'de Fields,
    ) -> Result<T, FieldsError> {
        let Some(bytes) = fields.get(&self.field) else {
            let field = Some(self.field.clone());
            return Err(FieldsError::new(field, FieldsErrorKind::Missing));
        };
        self.format.decode(bytes).map_err(|e| self.error(&*e))
    }

    fn error(&self, e: &(dyn std::error::Error + Send + Sync)) -> FieldsError {
        let kind = FieldsErrorKind::Payload {
            format: self.format.name().to_owned(),
            detail: e.to_string(),
        };
        FieldsError::new(Some(self.field.clone()), kind)
    }
}

/// JSON, with `serde_json` (feature `json`).
#[cfg(feature = "json")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json;

#[cfg(feature = "json")]
impl Payload<Json> {
    /// The field `field`, in JSON.
    pub fn json(field: impl Into<String>) -> Self {
        Payload::new(field, Json)
    }
}

#[cfg(feature = "json")]
impl PayloadFormat for Json {
    fn name(&self) -> &str {
        "JSON"
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, PayloadFormatError> {
        Ok(serde_json::to_vec(value)?)
    }

    fn decode<'de, T: Deserialize<'de>>(&self, bytes: &'de [u8]) -> Result<T, PayloadFormatError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}
