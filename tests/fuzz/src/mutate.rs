//! Fresh inputs for the replay tests: the corpus mutated the way libFuzzer's simplest
//! mutators do (bit flips, boundary bytes, cuts, repeats, splices, dictionary words).

use std::{fs, path::Path};

use fastrand::Rng;

/// Bytes that sit on length, type and sign boundaries.
const INTERESTING: [u8; 12] = [0, 1, 3, 4, 5, 8, 16, 20, 0x7f, 0x80, 0xfe, 0xff];

/// Applies one to five random mutations to `input`, taking material from `corpus` and
/// `dict`.
pub(crate) fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>], dict: &[Vec<u8>]) {
    for _ in 0..=rng.usize(..5) {
        let at = rng.usize(..=input.len());
        let end = |rng: &mut Rng, max: usize| (at + rng.usize(..=max)).min(input.len());
        match rng.u8(..8) {
            0 if at < input.len() => input[at] ^= 1 << rng.u8(..8),
            1 if at < input.len() => {
                input[at] = if rng.bool() {
                    INTERESTING[rng.usize(..INTERESTING.len())]
                } else {
                    rng.u8(..)
                };
            }
            2 => input.truncate(at),
            3 => {
                let len = rng.usize(..12);
                let extra: Vec<u8> = std::iter::repeat_with(|| rng.u8(..)).take(len).collect();
                input.splice(at..at, extra);
            }
            4 => {
                let end = end(rng, 8);
                input.drain(at..end);
            }
            5 => {
                let end = end(rng, 16);
                let copy = input[at..end].to_vec();
                let to = rng.usize(..=input.len());
                input.splice(to..to, copy);
            }
            6 if !corpus.is_empty() => {
                let other = &corpus[rng.usize(..corpus.len())];
                let from = rng.usize(..=other.len());
                let to = (from + rng.usize(..=64)).min(other.len());
                input.splice(at..at, other[from..to].iter().copied());
            }
            _ if !dict.is_empty() => {
                let word = &dict[rng.usize(..dict.len())];
                input.splice(at..at, word.iter().copied());
            }
            _ => {}
        }
    }
}

/// The words of a libFuzzer dictionary (`"word"` or `name="word"` per line, `\xNN`, `\\`
/// and `\"` escapes); none when there is no such file.
pub(crate) fn dictionary(path: &Path) -> Vec<Vec<u8>> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (start, end) = (line.find('"')? + 1, line.rfind('"')?);
            Some(unescape(line.get(start..end)?))
        })
        .collect()
}

fn unescape(quoted: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bytes = quoted.bytes();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        match bytes.next() {
            Some(b'x') => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                let value = std::str::from_utf8(&hex)
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                out.extend(value);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn dictionary_escapes() {
        assert_eq!(unescape(r"a\x00b\\\x"), b"a\x00b\\");
        assert_eq!(unescape(r#"\"[core]\""#), b"\"[core]\"");
    }
}
