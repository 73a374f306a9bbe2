//! The lean engine's chunked decoder (`http1/chunked.rs`) in both directions. Hyper's path
//! decodes chunked bodies with hyper's own decoder, which is not the gateway's to fuzz.
//!
//! Properties:
//! - Arbitrary bytes, fed in arbitrary pieces, decode to the same data, the same end (bytes
//!   consumed, done or not) as a whole-buffer reference decoder written here from RFC 9112
//!   §7.1 with the engine's documented limits and strictness (CRLF only, at most 15 hex
//!   digits, size lines and trailer section bounded); or both refuse.
//! - Any data, cut into any chunks by `encode_chunk` and ended by `LAST_CHUNK`, decodes back
//!   to the data and ends exactly at the end of the last chunk.

#![no_main]

use gateway::fuzzing::{encode_chunk, Decoder, LAST_CHUNK};
use libfuzzer_sys::fuzz_target;

const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

/// The input's first bytes choose what is done with the rest (so seeds stay readable):
/// - byte 0 below 0x80: decode the bytes from 2 on, fed in pieces of byte 0's and byte 1's
///   sizes in turn (0: whole);
/// - byte 0 from 0x80: encode the bytes from 4 on in chunks of bytes 1-2's size (big-endian,
///   0: one chunk), then decode that in pieces of byte 3's size.
enum Input<'a> {
    Decode {
        splits: [u8; 2],
        bytes: &'a [u8],
    },
    RoundTrip {
        size: u16,
        split: u8,
        data: &'a [u8],
    },
}

impl<'a> Input<'a> {
    fn read(input: &'a [u8]) -> Option<Self> {
        match *input {
            [mode, a, b, split, ref data @ ..] if mode >= 0x80 => Some(Self::RoundTrip {
                size: u16::from_be_bytes([a, b]),
                split,
                data,
            }),
            [mode, _, ..] if mode >= 0x80 => None,
            [first, second, ref bytes @ ..] => Some(Self::Decode {
                splits: [first, second],
                bytes,
            }),
            _ => None,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Data so far, bytes consumed, whether the body ended.
    Read(Vec<u8>, usize, bool),
    Refused,
}

/// Feeds `input` to the engine's decoder in pieces cut by `splits`.
fn engine(input: &[u8], splits: &[u8]) -> Outcome {
    let mut decoder = Decoder::default();
    let mut data = Vec::new();
    let mut consumed = 0;
    let mut at = 0;
    let mut cut = splits
        .iter()
        .cycle()
        .map(|&s| if s == 0 { input.len() } else { usize::from(s) });
    while at < input.len() && !decoder.is_done() {
        let end = (at + cut.next().unwrap_or(input.len()).max(1)).min(input.len());
        let piece = &input[at..end];
        match decoder.decode(piece, |run| data.extend_from_slice(run)) {
            Ok(used) => {
                assert!(used <= piece.len());
                assert!(
                    used == piece.len() || decoder.is_done(),
                    "stopped early without an end"
                );
                consumed += used;
            }
            Err(_) => return Outcome::Refused,
        }
        at = end;
    }
    Outcome::Read(data, consumed, decoder.is_done())
}

/// A plain reading of RFC 9112 §7.1 over the whole buffer, line by line: refused, or the
/// data, the bytes consumed and whether the body ended (incomplete when the input ends
/// first, with what is already wrong refused all the same). Lines end with CRLF only; a size
/// line may hold `MAX_LINE` bytes counting its CR, the trailer section `MAX_TRAILERS` bytes
/// counting CRs but not LFs (the engine's documented bounds).
fn reference(input: &[u8]) -> Outcome {
    let incomplete = |data| Outcome::Read(data, input.len(), false);
    let line_end = |rest: &[u8]| rest.iter().position(|&b| b == b'\r' || b == b'\n');
    let mut data = Vec::new();
    let mut at = 0;
    loop {
        let rest = &input[at..];
        let Some(i) = line_end(rest) else {
            if rest.len() > MAX_LINE || !size_line_prefix_ok(rest) {
                return Outcome::Refused;
            }
            return incomplete(data);
        };
        if rest[i] == b'\n' || i + 1 > MAX_LINE {
            return Outcome::Refused;
        }
        let Some(size) = size_line(&rest[..i]) else {
            return Outcome::Refused;
        };
        match rest.get(i + 1) {
            None => return incomplete(data),
            Some(b'\n') => at += i + 2,
            Some(_) => return Outcome::Refused,
        }
        if size == 0 {
            break;
        }
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if input.len() - at < size {
            data.extend_from_slice(&input[at..]);
            return incomplete(data);
        }
        data.extend_from_slice(&input[at..at + size]);
        at += size;
        for expected in *b"\r\n" {
            match input.get(at) {
                None => return incomplete(data),
                Some(&b) if b == expected => at += 1,
                Some(_) => return Outcome::Refused,
            }
        }
    }
    let mut counted = 0;
    loop {
        let rest = &input[at..];
        let Some(i) = line_end(rest) else {
            if counted + rest.len() > MAX_TRAILERS {
                return Outcome::Refused;
            }
            return incomplete(data);
        };
        counted += i + 1;
        if rest[i] == b'\n' || counted > MAX_TRAILERS {
            return Outcome::Refused;
        }
        match rest.get(i + 1) {
            None => return incomplete(data),
            Some(b'\n') => at += i + 2,
            Some(_) => return Outcome::Refused,
        }
        if i == 0 {
            return Outcome::Read(data, at, true);
        }
    }
}

/// 1 to 15 hex digits, then what [`size_rest_ok`] allows. Returns the size.
fn size_line(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 || !size_rest_ok(&line[digits..]) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(&line[..digits]).ok()?, 16).ok()
}

/// Whether an unfinished size line could still become valid.
fn size_line_prefix_ok(line: &[u8]) -> bool {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits > 15 || (digits == 0 && !line.is_empty()) {
        return false;
    }
    size_rest_ok(&line[digits..])
}

/// After the digits: optional whitespace (RFC 9112's BWS), then nothing, or `;` and an
/// extension of visible bytes, spaces and tabs; as hyper reads it. Every prefix of a rest
/// this allows is allowed too, so the same test serves an unfinished line.
fn size_rest_ok(rest: &[u8]) -> bool {
    let spaces = rest.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    match rest[spaces..].split_first() {
        None => true,
        Some((&b';', ext)) => ext.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)),
        Some(_) => false,
    }
}

fuzz_target!(|input: &[u8]| {
    match Input::read(input) {
        None => {}
        Some(Input::Decode { splits, bytes }) => {
            let whole = engine(bytes, &[]);
            let pieces = engine(bytes, &splits);
            assert_eq!(whole, pieces, "the split points changed the result");
            assert_eq!(
                whole,
                reference(bytes),
                "the engine and the reference decoder differ"
            );
        }
        Some(Input::RoundTrip { size, split, data }) => {
            let size = if size == 0 {
                data.len().max(1)
            } else {
                usize::from(size)
            };
            let mut encoded = Vec::new();
            for chunk in data.chunks(size) {
                encode_chunk(&mut encoded, chunk);
            }
            encode_chunk(&mut encoded, &[]);
            encoded.extend_from_slice(LAST_CHUNK);
            let end = encoded.len();
            encoded.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            assert_eq!(
                engine(&encoded, &[split]),
                Outcome::Read(data.to_vec(), end, true)
            );
        }
    }
});
