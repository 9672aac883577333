//! Where a chunked body ends (RFC 9112 section 7.1), found while its bytes pass through
//! unchanged: a scanner fed the bytes as they arrive. Strict where leniency lets two parsers
//! disagree (request smuggling): CRLF line ends only, hex sizes of at most 15 digits, and
//! trailers bounded in size.

/// The chunk framing is broken: the message cannot be delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct BadChunk;

/// Trailer sections longer than this are refused.
const MAX_TRAILERS: usize = 16 << 10;
const MAX_SIZE_DIGITS: u8 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex size; `digits` seen so far.
    Size {
        digits: u8,
    },
    /// After the size: extensions until CR.
    Extension,
    /// Expecting the LF after a size line.
    SizeLf,
    /// Inside chunk data.
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final CRLF).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    FinalLf,
    Done,
}

/// The scanner's state between feeds.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
    size: u64,
    trailers: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size { digits: 0 },
            size: 0,
            trailers: 0,
        }
    }
}

impl Chunked {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes the front of `input`: returns how many bytes belong to the body, which is
    /// all of them unless the body ends inside `input`.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, BadChunk> {
        let mut at = 0;
        while at < input.len() {
            if self.state == State::Done {
                break;
            }
            if self.state == State::Data {
                let take = self.size.min((input.len() - at) as u64);
                self.size -= take;
                at += take as usize;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let byte = input[at];
            at += 1;
            self.state = self.step(byte)?;
        }
        Ok(at)
    }

    fn step(&mut self, byte: u8) -> Result<State, BadChunk> {
        Ok(match self.state {
            State::Size { digits } => match (byte as char).to_digit(16) {
                Some(value) if digits < MAX_SIZE_DIGITS => {
                    self.size = self.size << 4 | u64::from(value);
                    State::Size { digits: digits + 1 }
                }
                Some(_) => return Err(BadChunk),
                None if digits == 0 => return Err(BadChunk),
                None => match byte {
                    b'\r' => State::SizeLf,
                    b';' | b' ' | b'\t' => State::Extension,
                    _ => return Err(BadChunk),
                },
            },
            State::Extension => match byte {
                b'\r' => State::SizeLf,
                b'\n' => return Err(BadChunk),
                _ => State::Extension,
            },
            State::SizeLf => match byte {
                b'\n' if self.size == 0 => State::TrailerStart,
                b'\n' => State::Data,
                _ => return Err(BadChunk),
            },
            State::DataCr => match byte {
                b'\r' => State::DataLf,
                _ => return Err(BadChunk),
            },
            State::DataLf => match byte {
                b'\n' => State::Size { digits: 0 },
                _ => return Err(BadChunk),
            },
            State::TrailerStart => match byte {
                b'\r' => State::FinalLf,
                b'\n' => return Err(BadChunk),
                _ => self.trailer_byte()?,
            },
            State::TrailerLine => match byte {
                b'\r' => State::TrailerLf,
                b'\n' => return Err(BadChunk),
                _ => self.trailer_byte()?,
            },
            State::TrailerLf => match byte {
                b'\n' => State::TrailerStart,
                _ => return Err(BadChunk),
            },
            State::FinalLf => match byte {
                b'\n' => State::Done,
                _ => return Err(BadChunk),
            },
            State::Data | State::Done => unreachable!("handled by feed"),
        })
    }

    fn trailer_byte(&mut self) -> Result<State, BadChunk> {
        self.trailers += 1;
        if self.trailers > MAX_TRAILERS {
            return Err(BadChunk);
        }
        Ok(State::TrailerLine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(parts: &[&[u8]]) -> Result<(usize, bool), BadChunk> {
        let mut chunked = Chunked::default();
        let mut total = 0;
        for part in parts {
            total += chunked.feed(part)?;
        }
        Ok((total, chunked.is_done()))
    }

    #[test]
    fn a_body_ends_after_the_last_chunk_and_its_trailers() {
        let body = b"5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(scan(&[body]), Ok((body.len(), true)));
        let with_trailers = b"3;x=y\r\nabc\r\n0\r\nDigest: z\r\n\r\n";
        assert_eq!(scan(&[with_trailers]), Ok((with_trailers.len(), true)));
        // Bytes after the end are not the body's.
        assert_eq!(scan(&[b"0\r\n\r\nGET / HTTP/1.1"]), Ok((5, true)));
    }

    #[test]
    fn any_split_of_the_bytes_gives_the_same_answer() {
        let body = b"a\r\n0123456789\r\n1F\r\n0123456789012345678901234567890\r\n0\r\nT: 1\r\n\r\n";
        for cut in 0..body.len() {
            let (a, b) = body.split_at(cut);
            assert_eq!(scan(&[a, b]), Ok((body.len(), true)), "cut at {cut}");
        }
        let (partial, done) = scan(&[&body[..body.len() - 1]]).expect("valid so far");
        assert_eq!((partial, done), (body.len() - 1, false));
    }

    #[test]
    fn framing_two_parsers_could_read_differently_is_refused() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"-5\r\nhello\r\n",
            b"\r\n",
            b"1000000000000000\r\n",
            b"0\r\nT: 1\n\r\n",
            b"0\r\n\n",
        ] {
            assert_eq!(
                scan(&[bad]),
                Err(BadChunk),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
