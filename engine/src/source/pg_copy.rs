//! PostgreSQL's binary `COPY` stream, as `COPY (SELECT …) TO STDOUT (FORMAT binary)`
//! sends it: a signature and a header, then per row a field count and per field a
//! length (-1 for NULL) and the value in its type's binary format — the same bytes a
//! portal's binary result holds, so values decode the same way. One request streams the
//! whole read, where a portal took a round trip per thousand rows and a protocol message
//! per row (measured: 992k transactions, 81k records/s through a portal).

use std::io::{self, BufRead, Read};

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// What can go wrong reading the stream: the connection, or bytes that are not what a
/// PostgreSQL server sends.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the COPY stream broke: {0}")]
    Io(#[from] io::Error),
    #[error("the server's reply is not a binary COPY stream (its signature is wrong)")]
    Signature,
    #[error("the server sent a row of {got} fields where {expected} were selected")]
    Fields { got: i16, expected: usize },
    #[error("the server sent a field length of {0}")]
    Length(i32),
}

/// Rows of a binary COPY stream, read in place from the reader's buffer when a value is
/// whole in it (the server sends a message per row, so almost always).
pub(crate) struct CopyRows<R> {
    reader: R,
    scratch: Vec<u8>,
}

impl<R: BufRead> CopyRows<R> {
    /// Reads and checks the header.
    pub(crate) fn new(mut reader: R) -> Result<Self, CopyError> {
        let mut signature = [0u8; 11];
        reader.read_exact(&mut signature)?;
        if &signature != SIGNATURE {
            return Err(CopyError::Signature);
        }
        let _flags = read_i32(&mut reader)?;
        let extension = read_i32(&mut reader)?;
        let extension = u64::try_from(extension).map_err(|_| CopyError::Length(extension))?;
        io::copy(&mut (&mut reader).take(extension), &mut io::sink())?;
        Ok(CopyRows { reader, scratch: Vec::new() })
    }

    /// Starts the next row: `false` after the stream's trailer. A stream that ends
    /// without its trailer is an error, so a broken connection never reads as a short
    /// table.
    pub(crate) fn next_row(&mut self, expected: usize) -> Result<bool, CopyError> {
        let mut count = [0u8; 2];
        self.reader.read_exact(&mut count)?;
        match i16::from_be_bytes(count) {
            -1 => Ok(false),
            n if usize::try_from(n).ok() == Some(expected) => Ok(true),
            got => Err(CopyError::Fields { got, expected }),
        }
    }

    /// Hands the row's next value (`None` for NULL) to `use_value`.
    pub(crate) fn field<T>(&mut self, use_value: impl FnOnce(Option<&[u8]>) -> T) -> Result<T, CopyError> {
        let len = read_i32(&mut self.reader)?;
        if len == -1 {
            return Ok(use_value(None));
        }
        let len = usize::try_from(len).map_err(|_| CopyError::Length(len))?;
        let buffered = self.reader.fill_buf()?;
        if buffered.len() >= len {
            let out = use_value(Some(&buffered[..len]));
            self.reader.consume(len);
            return Ok(out);
        }
        // Split across messages: gathered as it arrives (never allocated up front from
        // the length alone, which the server could overstate).
        self.scratch.clear();
        (&mut self.reader).take(len as u64).read_to_end(&mut self.scratch)?;
        if self.scratch.len() != len {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        Ok(use_value(Some(&self.scratch)))
    }
}

fn read_i32(reader: &mut impl Read) -> io::Result<i32> {
    let mut b = [0u8; 4];
    reader.read_exact(&mut b)?;
    Ok(i32::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(rows: &[&[Option<&[u8]>]], trailer: bool) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&3i32.to_be_bytes());
        out.extend_from_slice(b"ext");
        for row in rows {
            out.extend_from_slice(&(row.len() as i16).to_be_bytes());
            for value in *row {
                match value {
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(v) => {
                        out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                        out.extend_from_slice(v);
                    }
                }
            }
        }
        if trailer {
            out.extend_from_slice(&(-1i16).to_be_bytes());
        }
        out
    }

    fn read_all(bytes: &[u8], capacity: usize) -> Result<Vec<Vec<Option<Vec<u8>>>>, CopyError> {
        let mut rows = CopyRows::new(io::BufReader::with_capacity(capacity, bytes))?;
        let mut out = Vec::new();
        while rows.next_row(2)? {
            let a = rows.field(|v| v.map(<[u8]>::to_vec))?;
            let b = rows.field(|v| v.map(<[u8]>::to_vec))?;
            out.push(vec![a, b]);
        }
        Ok(out)
    }

    #[test]
    fn rows_values_and_nulls_come_back_whatever_the_buffer_size() {
        let bytes = stream(&[&[Some(b"abc"), None], &[Some(b""), Some(b"0123456789")]], true);
        let want = vec![vec![Some(b"abc".to_vec()), None], vec![Some(Vec::new()), Some(b"0123456789".to_vec())]];
        for capacity in [1, 3, 7, 4096] {
            assert_eq!(read_all(&bytes, capacity).unwrap(), want, "buffer of {capacity} bytes");
        }
    }

    #[test]
    fn a_cut_stream_a_wrong_signature_and_a_wrong_width_are_errors() {
        let bytes = stream(&[&[Some(b"abc"), None]], false);
        assert!(matches!(read_all(&bytes, 4096), Err(CopyError::Io(_))), "no trailer must not read as the end");
        let cut = stream(&[&[Some(b"abcdef"), None]], true);
        assert!(matches!(read_all(&cut[..cut.len() - 9], 4), Err(CopyError::Io(_))));
        let mut bad = stream(&[], true);
        bad[0] = b'X';
        assert!(matches!(read_all(&bad, 4096), Err(CopyError::Signature)));
        let three = stream(&[&[None, None, None]], true);
        assert!(matches!(read_all(&three, 4096), Err(CopyError::Fields { got: 3, expected: 2 })));
        let mut negative = stream(&[&[Some(b"a"), None]], true);
        let at = SIGNATURE.len() + 8 + 3 + 2;
        negative[at..at + 4].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(read_all(&negative, 4096), Err(CopyError::Length(-5))));
    }
}
