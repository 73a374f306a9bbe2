//! Generated cases: the fixed corpus's requests changed by one to three byte- and line-level
//! mutations picked by a seeded generator, so a failing case is reproduced by its seed (and
//! printed with its bytes, to become a fixed case). Not for: judging outcomes.

use crate::corpus::{self, Case};

/// xorshift64*: enough for picking mutations, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Bytes that change how a head or a body is read.
const BYTES: &[u8] = b"\r\n\0 \t:,;05aZ\x0b\x7f\x80\xff-_";

/// Header lines that change framing, routing or identity.
const LINES: &[&str] = &[
    "Content-Length: 5\r\n",
    "Content-Length: 0\r\n",
    "Content-Length: 99\r\n",
    "Transfer-Encoding: chunked\r\n",
    "Transfer-Encoding: identity\r\n",
    "Connection: close\r\n",
    "Connection: keep-alive\r\n",
    "Connection: Upgrade\r\nUpgrade: h2c\r\n",
    "Expect: 100-continue\r\n",
    "Host: other\r\n",
    "X-User-Id: mallory\r\n",
    "X-Forwarded-Host: evil\r\n",
    "Authorization: Bearer {TOKEN}\r\n",
    " folded\r\n",
];

/// `count` cases generated from `seed`.
pub fn cases(seed: u64, count: usize) -> Vec<Case> {
    let templates = corpus::all();
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            let template = rng.pick(&templates);
            let mut bytes = template.request.clone();
            let mut applied = Vec::new();
            for _ in 0..1 + rng.below(3) {
                applied.push(mutate(&mut rng, &mut bytes));
            }
            let mut case = Case::new(
                format!(
                    "#{i} of seed {seed}: {} <{}>",
                    template.name,
                    applied.join(", ")
                ),
                bytes,
            );
            case.reply = template.reply.clone();
            case.upstream_breaks = template.upstream_breaks;
            case
        })
        .collect()
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) -> &'static str {
    let at = rng.below(bytes.len() + 1);
    match rng.below(9) {
        0 => {
            bytes.insert(at, *rng.pick(BYTES));
            "insert byte"
        }
        1 if at < bytes.len() => {
            bytes.remove(at);
            "delete byte"
        }
        2 => {
            let line = lines(bytes);
            if let Some(&(start, end)) = line.get(rng.below(line.len())) {
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
            "duplicate line"
        }
        3 => {
            let line = lines(bytes);
            if let Some(&(start, end)) = line.get(1 + rng.below(line.len().saturating_sub(1))) {
                bytes.drain(start..end);
            }
            "delete line"
        }
        4 => {
            // After the request line, so it lands in the first head.
            let after = bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
            let line = rng.pick(LINES).as_bytes().to_vec();
            bytes.splice(after..after, line);
            "insert header line"
        }
        5 if at < bytes.len() && bytes[at].is_ascii_alphabetic() => {
            bytes[at] ^= 0x20;
            "flip case"
        }
        6 => {
            if let Some(digit) = bytes.iter().skip(at).position(u8::is_ascii_digit) {
                bytes[at + digit] = b'0' + rng.below(10) as u8;
            }
            "change digit"
        }
        7 => {
            bytes.extend_from_slice(b"GET /api/alice/tasks/next HTTP/1.1\r\nHost: gw\r\n\r\n");
            "pipeline"
        }
        _ => {
            bytes.truncate(at);
            "truncate"
        }
    }
}

/// Where each `\n`-ended line of `bytes` starts and ends.
fn lines(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if byte == b'\n' {
            found.push((start, i + 1));
            start = i + 1;
        }
    }
    found
}
