//! An entry's field/value pairs, kept as received.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::resp::bulk_end;

/// The field/value pairs of a stream entry, in the order the server sent
/// them (duplicates kept).
///
/// The pairs stay the RESP bulk strings the server sent, a slice of the
/// receive buffer that the whole reply shares: taking an entry costs no copy
/// and one reference count, however many fields it has, and the pairs are
/// read out when iterated. [`get`](Self::get) and [`iter`](Self::iter) give
/// borrowed slices; [`get_bytes`](Self::get_bytes) and
/// [`iter_bytes`](Self::iter_bytes) give owned [`Bytes`] that share the same
/// buffer. Build one from pairs with `collect()` or [`From`].
///
/// ```
/// use xgroup_core::Fields;
///
/// let fields: Fields = [("user_id", "123"), ("item", "widget")].into_iter().collect();
/// assert_eq!(fields.len(), 2);
/// assert_eq!(fields.get("item"), Some(&b"widget"[..]));
/// for (name, value) in &fields {
///     println!("{} = {}", String::from_utf8_lossy(name), String::from_utf8_lossy(value));
/// }
/// ```
#[derive(Clone, Default)]
pub struct Fields {
    /// `2 * pairs` RESP bulk strings (`$<n>\r\n<n bytes>\r\n`), checked when
    /// made.
    raw: Bytes,
    pairs: usize,
}

impl Fields {
    /// No fields.
    pub fn new() -> Self {
        Fields::default()
    }

    /// `raw` holds exactly `2 * pairs` well-formed bulk strings (the caller
    /// checked it with `resp::bulk_end`).
    pub(crate) fn from_checked_resp(raw: Bytes, pairs: usize) -> Self {
        Fields { raw, pairs }
    }

    /// Number of field/value pairs.
    pub fn len(&self) -> usize {
        self.pairs
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs == 0
    }

    /// The pairs, in order, as borrowed slices.
    pub fn iter(&self) -> FieldsIter<'_> {
        FieldsIter {
            raw: &self.raw,
            pos: 0,
            left: self.pairs,
        }
    }

    /// The value of the first field named `name`.
    pub fn get(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        let name = name.as_ref();
        self.iter().find(|(f, _)| *f == name).map(|(_, v)| v)
    }

    /// The value of the first field named `name`, as `Bytes` sharing the
    /// receive buffer (no copy).
    pub fn get_bytes(&self, name: impl AsRef<[u8]>) -> Option<Bytes> {
        self.get(name).map(|v| self.raw.slice_ref(v))
    }

    /// The pairs as owned `Bytes` sharing the receive buffer (no copy).
    pub fn iter_bytes(&self) -> impl Iterator<Item = (Bytes, Bytes)> + '_ {
        self.iter()
            .map(|(f, v)| (self.raw.slice_ref(f), self.raw.slice_ref(v)))
    }

    /// The pairs as a vector of owned `Bytes` (no copy of the contents).
    pub fn to_vec(&self) -> Vec<(Bytes, Bytes)> {
        self.iter_bytes().collect()
    }

    /// The pairs as RESP bulk strings, field then value, as the server sent
    /// them: ready to be appended to a command.
    pub fn as_resp(&self) -> &[u8] {
        &self.raw
    }
}

/// Iterator over [`Fields`]: `(field, value)` slices.
#[derive(Debug, Clone)]
pub struct FieldsIter<'a> {
    raw: &'a [u8],
    pos: usize,
    left: usize,
}

impl<'a> Iterator for FieldsIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let field = self.bulk()?;
        let value = self.bulk()?;
        self.left -= 1;
        Some((field, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for FieldsIter<'_> {}

impl<'a> FieldsIter<'a> {
    fn bulk(&mut self) -> Option<&'a [u8]> {
        let (start, end) = bulk_end(self.raw, self.pos)?;
        self.pos = end + 2;
        self.raw.get(start..end)
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = FieldsIter<'a>;

    fn into_iter(self) -> FieldsIter<'a> {
        self.iter()
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut raw = BytesMut::new();
        let mut pairs = 0;
        let mut put = |s: &[u8]| {
            let mut len = itoa::Buffer::new();
            raw.put_u8(b'$');
            raw.extend_from_slice(len.format(s.len()).as_bytes());
            raw.extend_from_slice(b"\r\n");
            raw.extend_from_slice(s);
            raw.extend_from_slice(b"\r\n");
        };
        for (f, v) in iter {
            put(f.as_ref());
            put(v.as_ref());
            pairs += 1;
        }
        Fields {
            raw: raw.freeze(),
            pairs,
        }
    }
}

impl From<Vec<(Bytes, Bytes)>> for Fields {
    fn from(pairs: Vec<(Bytes, Bytes)>) -> Self {
        pairs.into_iter().collect()
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.pairs == other.pairs && self.iter().eq(other.iter())
    }
}

impl Eq for Fields {}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter_bytes()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(f: &Fields) -> Vec<(Vec<u8>, Vec<u8>)> {
        f.iter().map(|(a, b)| (a.to_vec(), b.to_vec())).collect()
    }

    #[test]
    fn built_from_pairs_and_read_back() {
        let f: Fields = [("a", "1"), ("", ""), ("a", "two\r\n2")]
            .into_iter()
            .collect();
        assert_eq!(f.len(), 3);
        assert_eq!(
            pairs(&f),
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (vec![], vec![]),
                (b"a".to_vec(), b"two\r\n2".to_vec()),
            ]
        );
        // The first of duplicate names wins.
        assert_eq!(f.get("a"), Some(&b"1"[..]));
        assert_eq!(f.get(""), Some(&b""[..]));
        assert_eq!(f.get("b"), None);
        assert_eq!(
            f.as_resp(),
            b"$1\r\na\r\n$1\r\n1\r\n$0\r\n\r\n$0\r\n\r\n$1\r\na\r\n$6\r\ntwo\r\n2\r\n"
        );
        assert_eq!(f.iter().len(), 3);
        assert_eq!(
            format!("{f:?}"),
            r#"[(b"a", b"1"), (b"", b""), (b"a", b"two\r\n2")]"#
        );
        assert!(Fields::new().is_empty());
        assert_eq!(Fields::new().iter().next(), None);
    }

    #[test]
    fn owned_values_share_the_buffer() {
        let f: Fields = [("k", "value")].into_iter().collect();
        let v = f.get_bytes("k").unwrap();
        assert_eq!(&v[..], b"value");
        let raw = f.as_resp();
        assert!(raw.as_ptr_range().contains(&v.as_ptr()));
        assert_eq!(f.to_vec(), vec![(Bytes::from("k"), Bytes::from("value"))]);
    }

    #[test]
    fn equality_is_by_pairs() {
        let a: Fields = [("x", "1"), ("y", "2")].into_iter().collect();
        // Same pairs sent with a zero-padded length header.
        let b = Fields::from_checked_resp(
            Bytes::from_static(b"$01\r\nx\r\n$1\r\n1\r\n$1\r\ny\r\n$1\r\n2\r\n"),
            2,
        );
        assert_eq!(a, b);
        let c: Fields = [("x", "1")].into_iter().collect();
        assert_ne!(a, c);
        assert_eq!(Fields::from(a.to_vec()), a);
    }
}
