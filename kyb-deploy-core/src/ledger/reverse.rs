//! Reading a file's lines backwards, newest first, a block at a time.

use std::io::{self, Read, Seek, SeekFrom};

/// Bytes read at a time from the end of the ledger.
pub(super) const BLOCK: usize = 64 * 1024;

/// One line, read backwards.
pub(super) struct BackLine<'a> {
    /// Where the line starts in the file.
    pub(super) offset: u64,
    /// The line, without its newline.
    pub(super) bytes: &'a [u8],
    /// Whether this is a torn last line: the file does not end with a newline.
    pub(super) torn: bool,
}

/// The lines of a file from the last to the first. Holds at most a block plus the line being
/// read: a line longer than a block is read in growing steps, so reading it costs its length.
pub(super) struct ReverseLines<R> {
    source: R,
    /// File offset of `buf[0]`.
    start: u64,
    /// The bytes from `start` to the end of the next line to yield.
    buf: Vec<u8>,
    /// Length to cut `buf` to before the next line: the line yielded last and its newline.
    consumed: Option<usize>,
    block: usize,
    /// The next line yielded is the last line of the file, and it has no newline.
    torn: bool,
    done: bool,
}

impl<R: Read + Seek> ReverseLines<R> {
    /// The lines of the first `len` bytes of `source`, last first, read `block` bytes at a time.
    pub(super) fn new(source: R, len: u64, block: usize) -> io::Result<Self> {
        let mut lines = Self {
            source,
            start: len,
            buf: Vec::new(),
            consumed: None,
            block: block.max(1),
            torn: false,
            done: len == 0,
        };
        if len > 0 {
            lines.read_before()?;
            if lines.buf.last() == Some(&b'\n') {
                lines.buf.pop();
            } else {
                lines.torn = true;
            }
        }
        Ok(lines)
    }

    /// The file being read.
    pub(super) fn source_mut(&mut self) -> &mut R {
        &mut self.source
    }

    /// The offset up to which the file has not been yielded yet.
    pub(super) fn position(&self) -> u64 {
        self.start + self.consumed.unwrap_or(self.buf.len()) as u64
    }

    /// The next line, going backwards; `None` once the first line was yielded.
    pub(super) fn next_line(&mut self) -> io::Result<Option<BackLine<'_>>> {
        if let Some(len) = self.consumed.take() {
            self.buf.truncate(len);
        }
        if self.done {
            return Ok(None);
        }
        let torn = std::mem::take(&mut self.torn);
        loop {
            if let Some(newline) = rfind_newline(&self.buf) {
                self.consumed = Some(newline);
                return Ok(Some(BackLine {
                    offset: self.start + newline as u64 + 1,
                    bytes: &self.buf[newline + 1..],
                    torn,
                }));
            }
            if self.start == 0 {
                self.done = true;
                self.consumed = Some(0);
                return Ok(Some(BackLine {
                    offset: 0,
                    bytes: &self.buf,
                    torn,
                }));
            }
            self.read_before()?;
        }
    }

    /// The line that starts at `offset`, read again (to check a line skipped earlier).
    pub(super) fn line_at(&mut self, offset: u64) -> io::Result<Vec<u8>> {
        self.source.seek(SeekFrom::Start(offset))?;
        let mut line = Vec::new();
        let mut chunk = vec![0; self.block];
        loop {
            let read = self.source.read(&mut chunk)?;
            if read == 0 {
                return Ok(line);
            }
            if let Some(end) = chunk[..read].iter().position(|&b| b == b'\n') {
                line.extend_from_slice(&chunk[..end]);
                return Ok(line);
            }
            line.extend_from_slice(&chunk[..read]);
        }
    }

    /// Reads the bytes before `start` into the front of `buf`: a block, or as much as `buf`
    /// holds already when that is more, so that a long line is read in doubling steps.
    fn read_before(&mut self) -> io::Result<()> {
        let want = self.block.max(self.buf.len()) as u64;
        let from = self.start.saturating_sub(want);
        let len = usize::try_from(self.start - from).map_err(io::Error::other)?;
        let mut front = Vec::with_capacity(len + self.buf.len());
        front.resize(len, 0);
        self.source.seek(SeekFrom::Start(from))?;
        self.source.read_exact(&mut front)?;
        front.extend_from_slice(&self.buf);
        self.buf = front;
        self.start = from;
        Ok(())
    }
}

/// The index of the last newline in `bytes`, eight bytes at a time.
fn rfind_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut end = bytes.len();
    while end >= 8 {
        let word = &bytes[end - 8..end];
        let x = u64::from_le_bytes(word.try_into().expect("a slice of eight bytes")) ^ NEWLINES;
        // Exact test for a zero byte, that is a newline in `word`.
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            return word.iter().rposition(|&b| b == b'\n').map(|i| end - 8 + i);
        }
        end -= 8;
    }
    bytes[..end].iter().rposition(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::*;

    /// Lines of `text` read backwards with `block`, as (offset, text, torn), last first.
    fn backwards(text: &[u8], block: usize) -> Vec<(u64, Vec<u8>, bool)> {
        let mut lines =
            ReverseLines::new(Cursor::new(text.to_vec()), text.len() as u64, block).unwrap();
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            out.push((line.offset, line.bytes.to_vec(), line.torn));
        }
        out
    }

    /// The same lines read forwards, the way `load` splits them.
    fn forwards(text: &[u8]) -> Vec<(u64, Vec<u8>, bool)> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        super::super::lines::for_each(text, |_, bytes, torn| {
            out.push((offset, bytes.to_vec(), torn));
            offset += bytes.len() as u64 + 1;
        })
        .unwrap();
        out.reverse();
        out
    }

    #[test]
    fn lines_longer_than_a_block_are_whole() {
        let long = "x".repeat(1000);
        let text = format!("a\n{long}\n\nb{long}\nlast");
        let lines = backwards(text.as_bytes(), 16);
        let texts: Vec<_> = lines
            .iter()
            .map(|(_, b, torn)| (String::from_utf8(b.clone()).unwrap(), *torn))
            .collect();
        assert_eq!(
            texts,
            [
                ("last".to_owned(), true),
                (format!("b{long}"), false),
                (String::new(), false),
                (long.clone(), false),
                ("a".to_owned(), false),
            ]
        );
        assert_eq!(lines[1].0, 2 + 1000 + 2);
    }

    #[test]
    fn an_empty_file_has_no_lines_and_a_final_newline_no_torn_line() {
        assert!(backwards(b"", 4).is_empty());
        assert_eq!(backwards(b"a\n", 4), [(0, b"a".to_vec(), false)]);
        assert_eq!(
            backwards(b"\n", 4),
            [(0, Vec::new(), false)],
            "one empty line"
        );
    }

    #[test]
    fn a_line_is_read_again_at_its_offset() {
        let text = b"first\nsecond line\nthird";
        let mut lines = ReverseLines::new(Cursor::new(text.to_vec()), 23, 4).unwrap();
        assert_eq!(lines.line_at(6).unwrap(), b"second line");
        assert_eq!(lines.line_at(18).unwrap(), b"third");
    }

    #[test]
    fn rfind_newline_finds_the_last_one() {
        for len in 0..40 {
            for at in 0..len {
                let mut bytes = vec![b'a'; len];
                bytes[at] = b'\n';
                assert_eq!(rfind_newline(&bytes), Some(at), "len {len} at {at}");
            }
            assert_eq!(rfind_newline(&vec![0x8a; len]), None);
        }
    }

    proptest! {
        #[test]
        fn backwards_is_forwards_reversed(
            text in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'a'), Just(0xff_u8), Just(b'{')],
                0..200,
            ),
            block in 1usize..20,
        ) {
            prop_assert_eq!(backwards(&text, block), forwards(&text));
        }
    }
}
