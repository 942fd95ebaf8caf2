//! The attach socket's framing. Monitor to client: `[stream u8][len u32 BE][data]`
//! (stream 1 = stdout, 2 = stderr). Client to monitor: `[kind u8][len u32 BE][payload]`
//! with kind 0 = stdin bytes, 1 = close stdin, 2 = resize (rows u16 BE, cols u16 BE).
//! The engine's side of this lives in berth-engine's `container::attach`.

pub const STDIN: u8 = 0;
pub const CLOSE_STDIN: u8 = 1;
pub const RESIZE: u8 = 2;

/// Caps a client frame: nothing legitimate sends more at once.
const MAX_FRAME: usize = 1 << 20;

pub fn encode(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + data.len());
    out.push(stream);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    Stdin(Vec<u8>),
    CloseStdin,
    Resize { rows: u16, cols: u16 },
}

/// Takes whole frames off the front of `buffer`. `Err` means the client speaks
/// nonsense and should be dropped.
pub fn decode(buffer: &mut Vec<u8>) -> Result<Vec<Input>, ()> {
    let mut out = Vec::new();
    loop {
        if buffer.len() < 5 {
            return Ok(out);
        }
        let len = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
        if len > MAX_FRAME {
            return Err(());
        }
        if buffer.len() < 5 + len {
            return Ok(out);
        }
        let payload: Vec<u8> = buffer[5..5 + len].to_vec();
        let kind = buffer[0];
        buffer.drain(..5 + len);
        out.push(match kind {
            STDIN => Input::Stdin(payload),
            CLOSE_STDIN => Input::CloseStdin,
            RESIZE if payload.len() == 4 => {
                Input::Resize { rows: u16::from_be_bytes([payload[0], payload[1]]), cols: u16::from_be_bytes([payload[2], payload[3]]) }
            }
            _ => return Err(()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_whole_and_wait_for_partial() {
        let mut buffer = encode(STDIN, b"hello");
        buffer.extend(encode(RESIZE, &[0, 24, 0, 80]));
        buffer.extend(&encode(CLOSE_STDIN, b"")[..3]);
        let got = decode(&mut buffer).expect("decode");
        assert_eq!(got, vec![Input::Stdin(b"hello".to_vec()), Input::Resize { rows: 24, cols: 80 }]);
        assert_eq!(buffer.len(), 3);
        buffer.extend([0, 0]);
        assert_eq!(decode(&mut buffer).expect("decode"), vec![Input::CloseStdin]);
        assert!(buffer.is_empty());
    }

    #[test]
    fn nonsense_is_refused() {
        let mut buffer = encode(9, b"x");
        assert!(decode(&mut buffer).is_err());
        let mut huge = vec![STDIN];
        huge.extend(u32::MAX.to_be_bytes());
        assert!(decode(&mut huge).is_err());
    }
}
