//! Reading a `Deserialize` type from an entry's fields: the fields are a
//! map from names to values, each value parsed from its text.

use std::str;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{FieldsError, FieldsErrorKind};
use crate::fields::{Fields, FieldsIter};

/// Values longer than this are shortened in errors.
const SHOWN: usize = 64;

impl de::Error for FieldsError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        FieldsError::new(None, FieldsErrorKind::Other(msg.to_string()))
    }

    fn missing_field(field: &'static str) -> Self {
        FieldsError::new(Some(field.to_owned()), FieldsErrorKind::Missing)
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        FieldsError::new(Some(field.to_owned()), FieldsErrorKind::Unknown)
    }
}

/// The whole entry: a map of its fields.
pub(crate) struct EntryDeserializer<'de> {
    pub(crate) fields: &'de Fields,
}

impl<'de> Deserializer<'de> for EntryDeserializer<'de> {
    type Error = FieldsError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        visitor.visit_map(Pairs {
            fields: self.fields,
            iter: self.fields.iter(),
            taken: 0,
            current: None,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldsError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldsError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        visitor.visit_some(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct enum identifier
    }
}

/// The fields as a map. Of fields with the same name the first is taken
/// (as [`Fields::get`] does) and the others skipped.
struct Pairs<'de> {
    fields: &'de Fields,
    iter: FieldsIter<'de>,
    /// Pairs taken from `iter` so far.
    taken: usize,
    current: Option<(&'de [u8], &'de [u8])>,
}

impl<'de> MapAccess<'de> for Pairs<'de> {
    type Error = FieldsError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, FieldsError> {
        loop {
            let Some((name, value)) = self.iter.next() else {
                return Ok(None);
            };
            let earlier = self.taken;
            self.taken += 1;
            if self.fields.iter().take(earlier).any(|(n, _)| n == name) {
                continue;
            }
            self.current = Some((name, value));
            let key = Text {
                field: name,
                value: name,
            };
            return seed
                .deserialize(key)
                .map(Some)
                .map_err(|e| e.in_field(name));
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, FieldsError> {
        let Some((field, value)) = self.current.take() else {
            return Err(de::Error::custom("a value was asked for before its key"));
        };
        seed.deserialize(Text { field, value })
            .map_err(|e| e.in_field(field))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// One field's value (or a field's name, as a map key): parsed from its
/// text.
#[derive(Clone, Copy)]
struct Text<'de> {
    field: &'de [u8],
    value: &'de [u8],
}

impl<'de> Text<'de> {
    fn error(&self, kind: FieldsErrorKind) -> FieldsError {
        FieldsError::new(None, kind).in_field(self.field)
    }

    fn text(&self) -> Result<&'de str, FieldsError> {
        str::from_utf8(self.value).map_err(|_| self.error(FieldsErrorKind::NotText))
    }

    fn invalid(&self, expected: &'static str) -> FieldsError {
        let text = String::from_utf8_lossy(self.value);
        let value = match text.char_indices().nth(SHOWN) {
            Some((end, _)) => format!("{}...", &text[..end]),
            None => text.into_owned(),
        };
        self.error(FieldsErrorKind::Invalid { value, expected })
    }

    fn parse<T: str::FromStr>(&self, expected: &'static str) -> Result<T, FieldsError> {
        match str::from_utf8(self.value) {
            Ok(text) => text.parse().map_err(|_| self.invalid(expected)),
            Err(_) => Err(self.invalid(expected)),
        }
    }

    fn nested(&self) -> FieldsError {
        self.error(FieldsErrorKind::Nested)
    }
}

macro_rules! parse_number {
    ($($method:ident $visit:ident $ty:ty, $expected:literal;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
                visitor.$visit(self.parse::<$ty>($expected)?)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Text<'de> {
    type Error = FieldsError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        match str::from_utf8(self.value) {
            Ok(text) => visitor.visit_borrowed_str(text),
            Err(_) => visitor.visit_borrowed_bytes(self.value),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        match self.value {
            b"true" | b"1" => visitor.visit_bool(true),
            b"false" | b"0" => visitor.visit_bool(false),
            _ => Err(self.invalid("a bool (true, false, 1 or 0)")),
        }
    }

    parse_number! {
        deserialize_i8 visit_i8 i8, "an integer (i8)";
        deserialize_i16 visit_i16 i16, "an integer (i16)";
        deserialize_i32 visit_i32 i32, "an integer (i32)";
        deserialize_i64 visit_i64 i64, "an integer (i64)";
        deserialize_i128 visit_i128 i128, "an integer (i128)";
        deserialize_u8 visit_u8 u8, "an integer (u8)";
        deserialize_u16 visit_u16 u16, "an integer (u16)";
        deserialize_u32 visit_u32 u32, "an integer (u32)";
        deserialize_u64 visit_u64 u64, "an integer (u64)";
        deserialize_u128 visit_u128 u128, "an integer (u128)";
        deserialize_f32 visit_f32 f32, "a number";
        deserialize_f64 visit_f64 f64, "a number";
        deserialize_char visit_char char, "a single character";
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        visitor.visit_borrowed_str(self.text()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        visitor.visit_borrowed_bytes(self.value)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        visitor.visit_borrowed_bytes(self.value)
    }

    /// A field that is there is `Some`; a missing one is `None`.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        if self.value.is_empty() {
            visitor.visit_unit()
        } else {
            Err(self.invalid("empty"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldsError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldsError> {
        visitor.visit_newtype_struct(self)
    }

    /// A sequence is the value's bytes (so `Vec<u8>` is the raw value);
    /// a sequence of anything else is an error.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        visitor.visit_seq(ByteSeq {
            text: self,
            rest: self.value,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, FieldsError> {
        Err(self.nested())
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, FieldsError> {
        Err(self.nested())
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, FieldsError> {
        Err(self.nested())
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, FieldsError> {
        Err(self.nested())
    }

    /// An enum is the name of one of its unit variants.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldsError> {
        let name = BorrowedStrDeserializer::<FieldsError>::new(self.text()?);
        visitor.visit_enum(name).map_err(|e| e.in_field(self.field))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        visitor.visit_unit()
    }
}

/// A value's bytes as a sequence of `u8`.
struct ByteSeq<'de> {
    text: Text<'de>,
    rest: &'de [u8],
}

impl<'de> SeqAccess<'de> for ByteSeq<'de> {
    type Error = FieldsError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, FieldsError> {
        let Some((&byte, rest)) = self.rest.split_first() else {
            return Ok(None);
        };
        self.rest = rest;
        seed.deserialize(Byte {
            text: self.text,
            byte,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.rest.len())
    }
}

/// One byte of a value read as a sequence: only a `u8` may be read from it.
struct Byte<'de> {
    text: Text<'de>,
    byte: u8,
}

macro_rules! not_a_byte {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, FieldsError> {
                Err(self.text.nested())
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Byte<'de> {
    type Error = FieldsError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        visitor.visit_u8(self.byte)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldsError> {
        visitor.visit_u8(self.byte)
    }

    not_a_byte! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string
        deserialize_bytes deserialize_byte_buf deserialize_option deserialize_unit
        deserialize_seq deserialize_map deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, FieldsError> {
        Err(self.text.nested())
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, FieldsError> {
        Err(self.text.nested())
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, FieldsError> {
        Err(self.text.nested())
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, FieldsError> {
        Err(self.text.nested())
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, FieldsError> {
        Err(self.text.nested())
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, FieldsError> {
        Err(self.text.nested())
    }
}
