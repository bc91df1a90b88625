//! Writing a `Serialize` struct or map as an entry's fields: each field's
//! value as text (numbers, bools), its text (strings) or its bytes.

use serde::ser::{self, Impossible, Serialize, SerializeMap, SerializeSeq, SerializeStruct};

use crate::error::{FieldsError, FieldsErrorKind};

impl ser::Error for FieldsError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        FieldsError::new(None, FieldsErrorKind::Other(msg.to_string()))
    }
}

/// Field/value pairs, in the order serialized.
pub(crate) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn not_an_entry(what: &'static str) -> FieldsError {
    FieldsError::new(None, FieldsErrorKind::NotAnEntry { what })
}

fn nested() -> FieldsError {
    FieldsError::new(None, FieldsErrorKind::Nested)
}

/// The whole value: a struct or a map, whose fields become the entry's.
pub(crate) struct EntrySerializer;

/// The fields of a struct or map being serialized.
pub(crate) struct EntryFields {
    pairs: Pairs,
    /// A map's key, until its value comes.
    key: Option<Vec<u8>>,
}

impl EntryFields {
    fn new(len: Option<usize>) -> Self {
        EntryFields {
            pairs: Vec::with_capacity(len.unwrap_or(0)),
            key: None,
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, name: Vec<u8>, value: &T) -> Result<(), FieldsError> {
        match value.serialize(ValueSerializer) {
            Ok(Some(value)) => {
                self.pairs.push((name, value));
                Ok(())
            }
            // `None`: no field.
            Ok(None) => Ok(()),
            Err(e) => Err(e.in_field(&name)),
        }
    }
}

macro_rules! not_an_entry {
    ($($method:ident($($arg:ty),*) $what:literal;)*) => {
        $(
            fn $method(self, $(_: $arg),*) -> Result<Pairs, FieldsError> {
                Err(not_an_entry($what))
            }
        )*
    };
}

impl ser::Serializer for EntrySerializer {
    type Ok = Pairs;
    type Error = FieldsError;
    type SerializeSeq = Impossible<Pairs, FieldsError>;
    type SerializeTuple = Impossible<Pairs, FieldsError>;
    type SerializeTupleStruct = Impossible<Pairs, FieldsError>;
    type SerializeTupleVariant = Impossible<Pairs, FieldsError>;
    type SerializeMap = EntryFields;
    type SerializeStruct = EntryFields;
    type SerializeStructVariant = Impossible<Pairs, FieldsError>;

    not_an_entry! {
        serialize_bool(bool) "a bool";
        serialize_i8(i8) "a number";
        serialize_i16(i16) "a number";
        serialize_i32(i32) "a number";
        serialize_i64(i64) "a number";
        serialize_i128(i128) "a number";
        serialize_u8(u8) "a number";
        serialize_u16(u16) "a number";
        serialize_u32(u32) "a number";
        serialize_u64(u64) "a number";
        serialize_u128(u128) "a number";
        serialize_f32(f32) "a number";
        serialize_f64(f64) "a number";
        serialize_char(char) "a character";
        serialize_str(&str) "a string";
        serialize_bytes(&[u8]) "bytes";
        serialize_none() "None";
        serialize_unit() "()";
        serialize_unit_struct(&'static str) "a unit struct";
        serialize_unit_variant(&'static str, u32, &'static str) "an enum";
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Pairs, FieldsError> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Pairs, FieldsError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<Pairs, FieldsError> {
        Err(not_an_entry("an enum"))
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, FieldsError> {
        Err(not_an_entry("a sequence"))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, FieldsError> {
        Err(not_an_entry("a tuple"))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, FieldsError> {
        Err(not_an_entry("a tuple struct"))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, FieldsError> {
        Err(not_an_entry("an enum"))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<EntryFields, FieldsError> {
        Ok(EntryFields::new(len))
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<EntryFields, FieldsError> {
        Ok(EntryFields::new(Some(len)))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, FieldsError> {
        Err(not_an_entry("an enum"))
    }
}

impl SerializeStruct for EntryFields {
    type Ok = Pairs;
    type Error = FieldsError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), FieldsError> {
        self.push(key.as_bytes().to_vec(), value)
    }

    fn end(self) -> Result<Pairs, FieldsError> {
        Ok(self.pairs)
    }
}

impl SerializeMap for EntryFields {
    type Ok = Pairs;
    type Error = FieldsError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), FieldsError> {
        match key.serialize(ValueSerializer)? {
            Some(name) => {
                self.key = Some(name);
                Ok(())
            }
            None => Err(ser::Error::custom(
                "a map key of None cannot be a field name",
            )),
        }
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FieldsError> {
        match self.key.take() {
            Some(name) => self.push(name, value),
            None => Err(ser::Error::custom("a map value came before its key")),
        }
    }

    fn end(self) -> Result<Pairs, FieldsError> {
        Ok(self.pairs)
    }
}

/// One field's value: its text or bytes, or `None` for no field (a
/// `None` option).
struct ValueSerializer;

type Value = Option<Vec<u8>>;

macro_rules! as_text {
    ($($method:ident($ty:ty))*) => {
        $(
            fn $method(self, v: $ty) -> Result<Value, FieldsError> {
                Ok(Some(v.to_string().into_bytes()))
            }
        )*
    };
}

macro_rules! as_integer {
    ($($method:ident($ty:ty))*) => {
        $(
            fn $method(self, v: $ty) -> Result<Value, FieldsError> {
                Ok(Some(itoa::Buffer::new().format(v).as_bytes().to_vec()))
            }
        )*
    };
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = FieldsError;
    type SerializeSeq = ByteSeq;
    type SerializeTuple = Impossible<Value, FieldsError>;
    type SerializeTupleStruct = Impossible<Value, FieldsError>;
    type SerializeTupleVariant = Impossible<Value, FieldsError>;
    type SerializeMap = Impossible<Value, FieldsError>;
    type SerializeStruct = Impossible<Value, FieldsError>;
    type SerializeStructVariant = Impossible<Value, FieldsError>;

    fn serialize_bool(self, v: bool) -> Result<Value, FieldsError> {
        Ok(Some(if v {
            b"true".to_vec()
        } else {
            b"false".to_vec()
        }))
    }

    as_integer! {
        serialize_i8(i8) serialize_i16(i16) serialize_i32(i32) serialize_i64(i64)
        serialize_i128(i128) serialize_u8(u8) serialize_u16(u16) serialize_u32(u32)
        serialize_u64(u64) serialize_u128(u128)
    }

    // `Display` of a float is the shortest text that parses back to it.
    as_text! { serialize_f32(f32) serialize_f64(f64) serialize_char(char) }

    fn serialize_str(self, v: &str) -> Result<Value, FieldsError> {
        Ok(Some(v.as_bytes().to_vec()))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value, FieldsError> {
        Ok(Some(v.to_vec()))
    }

    fn serialize_none(self) -> Result<Value, FieldsError> {
        Ok(None)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, FieldsError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Value, FieldsError> {
        Ok(Some(Vec::new()))
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, FieldsError> {
        Ok(Some(Vec::new()))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, FieldsError> {
        Ok(Some(variant.as_bytes().to_vec()))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, FieldsError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<Value, FieldsError> {
        Err(nested())
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<ByteSeq, FieldsError> {
        Ok(ByteSeq(Vec::with_capacity(len.unwrap_or(0))))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, FieldsError> {
        Err(nested())
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, FieldsError> {
        Err(nested())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, FieldsError> {
        Err(nested())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, FieldsError> {
        Err(nested())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, FieldsError> {
        Err(nested())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, FieldsError> {
        Err(nested())
    }
}

/// A sequence as a value: only a sequence of `u8` (a `Vec<u8>`), written
/// as its bytes.
struct ByteSeq(Vec<u8>);

impl SerializeSeq for ByteSeq {
    type Ok = Value;
    type Error = FieldsError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FieldsError> {
        self.0.push(value.serialize(ByteSerializer)?);
        Ok(())
    }

    fn end(self) -> Result<Value, FieldsError> {
        Ok(Some(self.0))
    }
}

/// One element of a sequence: a `u8`, or an error.
struct ByteSerializer;

macro_rules! not_a_byte {
    ($($method:ident($($arg:ty),*))*) => {
        $(
            fn $method(self, $(_: $arg),*) -> Result<u8, FieldsError> {
                Err(nested())
            }
        )*
    };
}

impl ser::Serializer for ByteSerializer {
    type Ok = u8;
    type Error = FieldsError;
    type SerializeSeq = Impossible<u8, FieldsError>;
    type SerializeTuple = Impossible<u8, FieldsError>;
    type SerializeTupleStruct = Impossible<u8, FieldsError>;
    type SerializeTupleVariant = Impossible<u8, FieldsError>;
    type SerializeMap = Impossible<u8, FieldsError>;
    type SerializeStruct = Impossible<u8, FieldsError>;
    type SerializeStructVariant = Impossible<u8, FieldsError>;

    fn serialize_u8(self, v: u8) -> Result<u8, FieldsError> {
        Ok(v)
    }

    not_a_byte! {
        serialize_bool(bool) serialize_i8(i8) serialize_i16(i16) serialize_i32(i32)
        serialize_i64(i64) serialize_i128(i128) serialize_u16(u16) serialize_u32(u32)
        serialize_u64(u64) serialize_u128(u128) serialize_f32(f32) serialize_f64(f64)
        serialize_char(char) serialize_str(&str) serialize_bytes(&[u8]) serialize_none()
        serialize_unit() serialize_unit_struct(&'static str)
        serialize_unit_variant(&'static str, u32, &'static str)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<u8, FieldsError> {
        Err(nested())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _value: &T,
    ) -> Result<u8, FieldsError> {
        Err(nested())
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<u8, FieldsError> {
        Err(nested())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, FieldsError> {
        Err(nested())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, FieldsError> {
        Err(nested())
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, FieldsError> {
        Err(nested())
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, FieldsError> {
        Err(nested())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, FieldsError> {
        Err(nested())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, FieldsError> {
        Err(nested())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, FieldsError> {
        Err(nested())
    }
}
