//! Detach keys: the key sequence that ends an attach (or an exec's stream) with a TTY and
//! leaves the container running. Docker's default is ctrl-p ctrl-q; clients choose
//! another with `detachKeys` (the CLI's `--detach-keys` or its config.json).

/// Docker's default: ctrl-p, ctrl-q.
pub const DEFAULT: &[u8] = &[0x10, 0x11];

/// Parses docker's spelling: comma-separated keys, each a single character or
/// `ctrl-<letter>` / `ctrl-@`, `ctrl-[`, `ctrl-\`, `ctrl-]`, `ctrl-^`, `ctrl-_`. Empty
/// gives the default.
pub fn parse(spec: &str) -> Result<Vec<u8>, String> {
    if spec.is_empty() {
        return Ok(DEFAULT.to_vec());
    }
    let invalid = || format!("Invalid detach keys ({spec}) provided");
    spec.split(',')
        .map(|key| {
            let key = key.trim();
            match key.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => {
                    let c = c.as_bytes()[0];
                    match c {
                        b'a'..=b'z' => Ok(c - b'a' + 1),
                        b'@' => Ok(0),
                        b'[' => Ok(27),
                        b'\\' => Ok(28),
                        b']' => Ok(29),
                        b'^' => Ok(30),
                        b'_' => Ok(31),
                        _ => Err(invalid()),
                    }
                }
                None if key.len() == 1 => Ok(key.as_bytes()[0]),
                _ => Err(invalid()),
            }
        })
        .collect()
}

/// Watches input for the detach sequence. Bytes that start the sequence are held back
/// until the sequence is complete (the attach ends, the held bytes never reach the
/// container) or broken (they go on, in order).
#[derive(Debug)]
pub struct Watcher {
    keys: Vec<u8>,
    held: usize,
}

impl Watcher {
    pub fn new(keys: Vec<u8>) -> Watcher {
        Watcher { keys, held: 0 }
    }

    /// What of `input` to pass on, and whether the sequence completed (then nothing
    /// after it is passed on).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &byte in input {
            if self.keys.is_empty() {
                out.push(byte);
                continue;
            }
            if byte == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    self.held = 0;
                    return (out, true);
                }
                continue;
            }
            // The sequence broke: what was held goes on, and this byte may start it anew.
            out.extend_from_slice(&self.keys[..self.held]);
            self.held = 0;
            if byte == self.keys[0] {
                self.held = 1;
                if self.keys.len() == 1 {
                    self.held = 0;
                    return (out, true);
                }
            } else {
                out.push(byte);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_spellings_parse_and_bad_ones_are_refused() {
        assert_eq!(parse("").unwrap(), DEFAULT);
        assert_eq!(parse("ctrl-p,ctrl-q").unwrap(), DEFAULT);
        assert_eq!(parse("ctrl-x").unwrap(), vec![24]);
        assert_eq!(parse("a,ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_").unwrap(), vec![b'a', 0, 27, 28, 29, 30, 31]);
        for bad in ["ctrl-", "ctrl-P", "ctrl-1", "ab", "shift-a", "a,,b"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("Invalid detach keys"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_sequence_detaches_and_anything_else_passes_in_order() {
        let mut w = Watcher::new(DEFAULT.to_vec());
        assert_eq!(w.feed(b"ls\n"), (b"ls\n".to_vec(), false));
        // Split across reads, with bytes before it.
        assert_eq!(w.feed(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(w.feed(b"\x11after"), (Vec::new(), true));
        // Broken: the held ctrl-p goes on with what broke it.
        let mut w = Watcher::new(DEFAULT.to_vec());
        assert_eq!(w.feed(b"\x10a"), (b"\x10a".to_vec(), false));
        // ctrl-p ctrl-p ctrl-q: the first goes on, the last two detach.
        assert_eq!(w.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
        // One key.
        let mut w = Watcher::new(vec![24]);
        assert_eq!(w.feed(b"ab\x18cd"), (b"ab".to_vec(), true));
        let mut w = Watcher::new(vec![24]);
        assert_eq!(w.feed(b"a\x10\x18"), (b"a\x10".to_vec(), true));
    }
}
