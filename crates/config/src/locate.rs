//! Finds where a field sits in JSON source text, so that errors found after parsing can
//! still name a line and column.

/// The 1-based line and column of the value at `path` (object keys only), or of the
/// deepest part of the path that exists.
pub fn locate(source: &str, path: &[&str]) -> (usize, usize) {
    let mut scanner = Scanner { bytes: source.as_bytes(), pos: 0 };
    let offset = scanner.find(path).unwrap_or(0);
    line_column(source, offset)
}

/// The 1-based line and column of a byte offset.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1) + 1;
    (line, column)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    /// Walks into the object keys of `path`; returns the offset of the last value reached.
    fn find(&mut self, path: &[&str]) -> Option<usize> {
        self.skip_ws();
        let start = self.pos;
        let Some((first, rest)) = path.split_first() else {
            return Some(start);
        };
        if self.peek()? != b'{' {
            return Some(start);
        }
        self.pos += 1;
        loop {
            self.skip_ws();
            if self.peek()? == b'}' {
                return Some(start);
            }
            let key = self.string()?;
            self.skip_ws();
            self.pos += 1; // the ':'
            if key == *first {
                return self.find(rest);
            }
            self.skip_value()?;
            self.skip_ws();
            if self.peek()? == b',' {
                self.pos += 1;
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    fn string(&mut self) -> Option<String> {
        self.pos += 1; // the opening quote
        let start = self.pos;
        while self.peek()? != b'"' {
            self.pos += if self.peek()? == b'\\' { 2 } else { 1 };
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).ok()?.to_owned();
        self.pos += 1;
        Some(text)
    }

    fn skip_value(&mut self) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => depth -= 1,
                        _ => {}
                    }
                    self.pos += 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
            }
            _ => {
                while !matches!(self.peek()?, b',' | b'}' | b']') {
                    self.pos += 1;
                }
                Some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values() {
        let src = "{\n  \"slug\": \"a\",\n  \"websockets\": {\n    \"rt\": {\"x\": [1, {\"y\": 2}], \"path\": \"/ws\"}\n  }\n}";
        assert_eq!(locate(src, &["slug"]), (2, 11));
        assert_eq!(locate(src, &["websockets", "rt", "path"]), (4, 40));
        assert_eq!(locate(src, &["websockets", "missing"]), (3, 17));
    }
}
