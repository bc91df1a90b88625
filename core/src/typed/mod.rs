//! Typed messages (feature `serde`): an entry's fields read into a
//! `Deserialize` type and written from a `Serialize` one, field by field or
//! as one payload field in a format of the caller's choice.
//!
//! Field by field, the field names are the type's field names and each
//! value is text: numbers and bools as their decimal text (`true`/`false`;
//! `1`/`0` are read as bools too), strings as they are, bytes (`Bytes`,
//! `Vec<u8>`, `serde_bytes`) raw, a unit enum variant as its name. An
//! `Option` that is `None` is no field at all, and a missing field reads
//! as `None`. A nested structure (a struct, map, tuple, a sequence other
//! than bytes, an enum variant with data) is not one field's value: it is
//! an error naming the field, unless the whole value goes in one payload
//! field ([`Payload`]).

mod de;
mod payload;
mod ser;

use serde::{Deserialize, Serialize};

use crate::error::FieldsError;
use crate::fields::Fields;

#[cfg(feature = "json")]
pub use payload::Json;
pub use payload::{Payload, PayloadFormat, PayloadFormatError};

/// Writes a struct (or a map) as an entry's fields, in the order
/// serialized, ready for `xadd`; [`Fields::deserialize`] reads them back.
///
/// The field names are the type's field names and each value is text:
/// numbers and bools as their decimal text (`true`/`false`; `1`/`0` are
/// read as bools too), strings as they are, bytes (`Bytes`, `Vec<u8>`,
/// `serde_bytes`) raw, a unit enum variant as its name. An `Option` that
/// is `None` is no field at all, and a missing field reads as `None`. A
/// nested structure (a struct, map, tuple, a sequence other than bytes, an
/// enum variant with data) is not one field's value: it is an error naming
/// the field, unless the whole value goes in one payload field
/// ([`Payload`]).
///
/// ```
/// #[derive(serde::Serialize)]
/// struct Order<'a> { id: u64, item: &'a str, paid: bool, note: Option<&'a str> }
///
/// let fields = xgroup_core::to_fields(&Order { id: 7, item: "widget", paid: true, note: None })?;
/// assert_eq!(fields, [("id", "7"), ("item", "widget"), ("paid", "true")].into_iter().collect());
/// # Ok::<(), xgroup_core::FieldsError>(())
/// ```
///
/// A nested structure is an error naming its field:
///
/// ```
/// #[derive(serde::Serialize)]
/// struct Address { city: String }
/// #[derive(serde::Serialize)]
/// struct Customer { name: String, address: Address }
///
/// let e = xgroup_core::to_fields(&Customer { name: "Ada".into(), address: Address { city: "London".into() } })
///     .unwrap_err();
/// assert_eq!(e.field.as_deref(), Some("address"));
/// assert!(e.to_string().starts_with(r#"field "address": a nested structure"#));
/// ```
pub fn to_fields<T: Serialize + ?Sized>(value: &T) -> Result<Fields, FieldsError> {
    Ok(value.serialize(ser::EntrySerializer)?.into_iter().collect())
}

/// Reads a `Deserialize` type from `fields`: the same as
/// [`Fields::deserialize`].
pub fn from_fields<'de, T: Deserialize<'de>>(fields: &'de Fields) -> Result<T, FieldsError> {
    T::deserialize(de::EntryDeserializer { fields })
}

impl Fields {
    /// Reads the fields into `T`, a struct (or a map) whose field names
    /// are the entry's field names, each value parsed from its text (see
    /// [`to_fields`](crate::to_fields) for the mapping). Strings and bytes can borrow
    /// from the fields (`&str`, `&[u8]`). Of fields with the same name the
    /// first is read, as [`get`](Self::get) does. Errors name the field:
    ///
    /// ```
    /// #[derive(serde::Deserialize, Debug, PartialEq)]
    /// struct Payment { user: String, amount: f64, note: Option<String> }
    ///
    /// let fields: xgroup_core::Fields = [("user", "ada"), ("amount", "12.5")].into_iter().collect();
    /// let payment: Payment = fields.deserialize()?;
    /// assert_eq!(payment, Payment { user: "ada".into(), amount: 12.5, note: None });
    ///
    /// let bad: xgroup_core::Fields = [("user", "ada"), ("amount", "abc")].into_iter().collect();
    /// let e = bad.deserialize::<Payment>().unwrap_err();
    /// assert_eq!(e.to_string(), r#"field "amount": "abc" is not a number"#);
    /// # Ok::<(), xgroup_core::FieldsError>(())
    /// ```
    pub fn deserialize<'de, T: Deserialize<'de>>(&'de self) -> Result<T, FieldsError> {
        from_fields(self)
    }

    /// Reads `T` from the one field `payload` names, in its format (e.g.
    /// [`Payload::json`]); the other fields are not looked at.
    pub fn deserialize_payload<'de, T, F>(&'de self, payload: &Payload<F>) -> Result<T, FieldsError>
    where
        T: Deserialize<'de>,
        F: PayloadFormat,
    {
        payload.from_fields(self)
    }
}
