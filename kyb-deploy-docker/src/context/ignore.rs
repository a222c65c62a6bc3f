//! `.dockerignore` patterns with Docker's semantics.

/// The patterns of a `.dockerignore` file.
#[derive(Clone, Debug, Default)]
pub(crate) struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore` file.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, line) in text.lines().enumerate() {
            // As in Docker, a comment is a `#` at the very start of the line.
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exclusion, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = Pattern::new(body, exclusion)
                .map_err(|why| format!("line {}: pattern {line:?} {why}", index + 1))?;
            patterns.push(pattern);
        }
        Ok(Self { patterns })
    }

    /// Adds an exception for the literal path `path`, so that it is sent whatever the
    /// patterns say.
    pub(crate) fn always_include(mut self, path: &str) -> Self {
        let path = clean(path);
        self.patterns.push(Pattern {
            tokens: path.chars().map(Token::Literal).collect(),
            literal_prefix: path,
            literal: true,
            exclusion: true,
        });
        self
    }

    /// Whether the path (relative to the context, `/`-separated) is excluded: the last
    /// pattern that matches it or one of its parent directories decides.
    pub(crate) fn excludes(&self, path: &str) -> bool {
        let path: Vec<char> = path.chars().collect();
        let parents: Vec<usize> = path
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == '/')
            .map(|(i, _)| i)
            .collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // A pattern can only change the verdict in one direction.
            if pattern.exclusion != excluded {
                continue;
            }
            let matched =
                pattern.matches(&path) || parents.iter().any(|&end| pattern.matches(&path[..end]));
            if matched {
                excluded = !pattern.exclusion;
            }
        }
        excluded
    }

    /// Whether an exception may re-include something below the excluded directory `dir`.
    ///
    /// Everything below an excluded directory is excluded by the same pattern, so only an
    /// exception that matches a path starting with `dir/` can bring something back. A literal
    /// exception must start with `dir/`; one with wildcards must have a literal prefix that
    /// is compatible with `dir/`.
    pub(crate) fn may_include_below(&self, dir: &str) -> bool {
        let dir = format!("{dir}/");
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            p.literal_prefix.starts_with(&dir) || (!p.literal && dir.starts_with(&p.literal_prefix))
        })
    }
}

#[derive(Clone, Debug)]
struct Pattern {
    tokens: Vec<Token>,
    /// The text before the first wildcard.
    literal_prefix: String,
    /// Whether the pattern has no wildcard at all.
    literal: bool,
    /// Whether it is an exception (`!`).
    exclusion: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    Question,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` followed by more pattern: any number of whole directories, including none.
    AnyDirectories,
    /// `**` at the end: anything.
    Anything,
}

impl Pattern {
    fn new(text: &str, exclusion: bool) -> Result<Self, String> {
        let text = clean(text);
        let text = match text.strip_prefix('/') {
            Some(rest) if !rest.is_empty() => rest.to_owned(),
            _ => text,
        };
        let tokens = tokenize(&text)?;
        let literal_prefix: String = tokens
            .iter()
            .map_while(|t| match t {
                Token::Literal(c) => Some(*c),
                _ => None,
            })
            .collect();
        let literal = tokens.iter().all(|t| matches!(t, Token::Literal(_)));
        Ok(Self {
            tokens,
            literal_prefix,
            literal,
            exclusion,
        })
    }

    fn matches(&self, path: &[char]) -> bool {
        Matcher {
            tokens: &self.tokens,
            text: path,
            memo: vec![None; (self.tokens.len() + 1) * (path.len() + 1)],
        }
        .at(0, 0)
    }
}

/// Go's `filepath.Clean` on `/`-separated paths: no empty or `.` segments, `..` resolved.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                // `**/` is read as `**`.
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                tokens.push(if chars.peek().is_none() {
                    Token::Anything
                } else {
                    Token::AnyDirectories
                });
            }
            '*' => tokens.push(Token::Star),
            '?' => tokens.push(Token::Question),
            '\\' => match chars.next() {
                Some(escaped) => tokens.push(Token::Literal(escaped)),
                None => return Err("ends with an unfinished escape '\\'".into()),
            },
            '[' => tokens.push(class(&mut chars)?),
            other => tokens.push(Token::Literal(other)),
        }
    }
    Ok(tokens)
}

fn class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Token, String> {
    let unclosed = || "has an unclosed character class '['".to_owned();
    let negated = chars.next_if_eq(&'^').is_some();
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = chars.next().ok_or_else(unclosed)?;
        let low = match c {
            // A `]` right after the opening bracket is a member, not the end.
            ']' if !first => break,
            '\\' => chars.next().ok_or_else(unclosed)?,
            other => other,
        };
        first = false;
        let mut high = low;
        if chars.peek() == Some(&'-') {
            let mut ahead = chars.clone();
            ahead.next();
            if let Some(&next) = ahead.peek().filter(|c| **c != ']') {
                chars.next();
                chars.next();
                high = if next == '\\' {
                    chars.next().ok_or_else(unclosed)?
                } else {
                    next
                };
                if high < low {
                    return Err(format!("has an invalid range {low}-{high}"));
                }
            }
        }
        ranges.push((low, high));
    }
    Ok(Token::Class { negated, ranges })
}

/// Matches tokens against a path, remembering sub-results so that patterns with several
/// stars stay linear in practice.
struct Matcher<'a> {
    tokens: &'a [Token],
    text: &'a [char],
    memo: Vec<Option<bool>>,
}

impl Matcher<'_> {
    fn at(&mut self, token: usize, pos: usize) -> bool {
        let key = token * (self.text.len() + 1) + pos;
        if let Some(known) = self.memo[key] {
            return known;
        }
        let result = self.compute(token, pos);
        self.memo[key] = Some(result);
        result
    }

    fn compute(&mut self, token: usize, pos: usize) -> bool {
        let Some(t) = self.tokens.get(token) else {
            return pos == self.text.len();
        };
        let current = self.text.get(pos).copied();
        match t {
            Token::Literal(c) => current == Some(*c) && self.at(token + 1, pos + 1),
            Token::Question => current.is_some_and(|c| c != '/') && self.at(token + 1, pos + 1),
            Token::Class { negated, ranges } => {
                current.is_some_and(|c| {
                    ranges.iter().any(|(low, high)| (*low..=*high).contains(&c)) != *negated
                }) && self.at(token + 1, pos + 1)
            }
            Token::Star => {
                self.at(token + 1, pos)
                    || (current.is_some_and(|c| c != '/') && self.at(token, pos + 1))
            }
            Token::Anything => (pos..=self.text.len()).any(|end| self.at(token + 1, end)),
            Token::AnyDirectories => {
                self.at(token + 1, pos)
                    || (pos..self.text.len())
                        .any(|slash| self.text[slash] == '/' && self.at(token + 1, slash + 1))
            }
        }
    }
}
