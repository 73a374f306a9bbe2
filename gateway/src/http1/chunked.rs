//! The chunked transfer coding (RFC 9112 §7.1) of an upstream's response body, decoded
//! incrementally so the engine can re-frame the data for the client and know where the body
//! ends. Chunk extensions and trailer fields are read and dropped: they describe the hop.
//!
//! Not for: request bodies (a chunked request goes to hyper), nor I/O.

/// A size line (digits and extensions) longer than this is refused.
const MAX_LINE: usize = 4096;
/// The trailer section together may not exceed this.
const MAX_TRAILERS: usize = 16 * 1024;

/// Why a chunked body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("invalid chunk size line")]
    Size,
    #[error("chunk data not followed by CRLF")]
    DataEnd,
    #[error("chunk size line or trailer section too long")]
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits; `digits` so far.
    Size {
        digits: u8,
    },
    /// After the digits, whitespace: more of it, `;` or CR may follow (RFC 9112's BWS before
    /// an extension), nothing else, as in hyper.
    SizeSpace,
    /// In an extension: anything visible up to CR.
    Extension,
    /// Expecting the LF that ends a size line.
    SizeLf,
    /// Chunk data still to come.
    Data,
    /// Expecting the CR, then the LF, after chunk data.
    DataCr,
    DataLf,
    /// Trailer lines after the last chunk; `empty` while the current line has no bytes.
    Trailer {
        empty: bool,
    },
    /// Expecting the LF of a trailer line (the last one if `end`).
    TrailerLf {
        end: bool,
    },
    Done,
}

/// Incremental decoder state for one chunked body.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    /// Size of the chunk being read, or data bytes left in it.
    remaining: u64,
    /// Bytes of the current size line or of the trailer section so far.
    line: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self {
            state: State::Size { digits: 0 },
            remaining: 0,
            line: 0,
        }
    }
}

impl Decoder {
    /// Whether the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`, handing each run of chunk data to `data`, and returns how many
    /// bytes it consumed: all of `input`, or fewer once the body has ended (the rest belongs
    /// to whatever follows it on the connection).
    pub fn decode<'a>(
        &mut self,
        input: &'a [u8],
        mut data: impl FnMut(&'a [u8]),
    ) -> Result<usize, ChunkError> {
        let mut at = 0;
        while at < input.len() {
            if self.state == State::Data {
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(input.len() - at);
                data(&input[at..at + take]);
                at += take;
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            if self.state == State::Done {
                break;
            }
            self.step(input[at])?;
            at += 1;
        }
        Ok(at)
    }

    fn step(&mut self, byte: u8) -> Result<(), ChunkError> {
        self.state = match self.state {
            State::Size { digits } => {
                self.count_line(MAX_LINE)?;
                match (byte as char).to_digit(16) {
                    // 15 hex digits: far beyond any body, and no u64 overflow.
                    Some(value) if digits < 15 => {
                        self.remaining = self.remaining * 16 + u64::from(value);
                        State::Size { digits: digits + 1 }
                    }
                    Some(_) => return Err(ChunkError::Size),
                    None if digits == 0 => return Err(ChunkError::Size),
                    None => self.after_size(byte)?,
                }
            }
            State::SizeSpace | State::Extension => {
                self.count_line(MAX_LINE)?;
                self.after_size(byte)?
            }
            State::SizeLf if byte == b'\n' => {
                self.line = 0;
                if self.remaining == 0 {
                    State::Trailer { empty: true }
                } else {
                    State::Data
                }
            }
            State::SizeLf => return Err(ChunkError::Size),
            State::DataCr if byte == b'\r' => State::DataLf,
            State::DataLf if byte == b'\n' => State::Size { digits: 0 },
            State::DataCr | State::DataLf => return Err(ChunkError::DataEnd),
            State::Trailer { empty } => {
                self.count_line(MAX_TRAILERS)?;
                match byte {
                    b'\r' => State::TrailerLf { end: empty },
                    b'\n' => return Err(ChunkError::Size),
                    _ => State::Trailer { empty: false },
                }
            }
            State::TrailerLf { end } if byte == b'\n' => {
                if end {
                    State::Done
                } else {
                    State::Trailer { empty: true }
                }
            }
            State::TrailerLf { .. } => return Err(ChunkError::Size),
            State::Data | State::Done => unreachable!("handled by decode"),
        };
        Ok(())
    }

    /// A byte after the size digits: extensions run to CR; a bare LF is refused (some
    /// parsers accept it, and disagreement between parsers is how bodies get smuggled).
    fn after_size(&self, byte: u8) -> Result<State, ChunkError> {
        match byte {
            b'\r' => Ok(State::SizeLf),
            b'\n' => Err(ChunkError::Size),
            // Extensions start with `;` (after optional whitespace); their content is dropped.
            _ if self.state == State::Extension => {
                if byte >= 0x20 && byte != 0x7f || byte == b'\t' {
                    Ok(State::Extension)
                } else {
                    Err(ChunkError::Size)
                }
            }
            b';' => Ok(State::Extension),
            b' ' | b'\t' => Ok(State::SizeSpace),
            _ => Err(ChunkError::Size),
        }
    }

    fn count_line(&mut self, limit: usize) -> Result<(), ChunkError> {
        self.line += 1;
        if self.line > limit {
            return Err(ChunkError::TooLong);
        }
        Ok(())
    }
}

/// Appends one chunk holding `data` to `out` (nothing for empty data, which would end the body).
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk and an empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes `input` fed in pieces of `split` bytes; returns (data, consumed, done).
    fn decode_in_pieces(input: &[u8], split: usize) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        let mut decoder = Decoder::default();
        let mut data = Vec::new();
        let mut consumed = 0;
        for piece in input.chunks(split.max(1)) {
            let used = decoder.decode(piece, |run| data.extend_from_slice(run))?;
            consumed += used;
            if decoder.is_done() {
                break;
            }
        }
        Ok((data, consumed, decoder.is_done()))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers_and_stops_at_the_end() {
        let body = b"5;name=value\r\nhello\r\n6 \r\n world\r\n0\r\nExpires: never\r\n\r\nNEXT";
        let (data, consumed, done) = decode_in_pieces(body, 1000).unwrap();
        assert_eq!(data, b"hello world");
        assert!(done);
        assert_eq!(&body[consumed..], b"NEXT");
    }

    #[test]
    fn refuses_what_parsers_disagree_on() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..], // bare LF after the size
            b"5\r\nhelloX\r\n0\r\n\r\n",   // data longer than declared
            b"\r\nhello\r\n",              // no size
            b"-5\r\nhello\r\n",            // sign
            b"1000000000000000\r\n",       // 16 digits
            b"0\r\nX: y\n\r\n",            // bare LF in a trailer
            b"5 6\r\nhello\r\n0\r\n\r\n",  // something other than `;` after whitespace
            b"5 junk\r\nhello\r\n0\r\n\r\n",
        ] {
            assert!(decode_in_pieces(bad, 1000).is_err(), "{bad:?}");
        }
        // Whitespace before the extension, and none at all, as hyper takes them.
        for good in [
            &b"5 \t ;a=b\r\nhello\r\n0\r\n\r\n"[..],
            b"5 \r\nhello\r\n0\r\n\r\n",
        ] {
            assert!(decode_in_pieces(good, 1).is_ok(), "{good:?}");
        }
        let long = format!("1;{}\r\n", "e".repeat(MAX_LINE));
        assert_eq!(
            decode_in_pieces(long.as_bytes(), 1000),
            Err(ChunkError::TooLong)
        );
    }

    proptest! {
        /// Whatever the chunk sizes and however the bytes arrive, the data comes out whole
        /// and the end is found exactly.
        #[test]
        fn any_split_decodes_the_same(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..8),
            split in 1usize..64,
        ) {
            let mut encoded = Vec::new();
            for chunk in &chunks {
                encode_chunk(&mut encoded, chunk);
            }
            encoded.extend_from_slice(LAST_CHUNK);
            let end = encoded.len();
            encoded.extend_from_slice(b"GET /next HTTP/1.1\r\n");
            let (data, consumed, done) = decode_in_pieces(&encoded, split).unwrap();
            prop_assert!(done);
            prop_assert_eq!(consumed, end);
            prop_assert_eq!(data, chunks.concat());
        }
    }
}
