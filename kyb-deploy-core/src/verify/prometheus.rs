//! A validator of the Prometheus text exposition format, version 0.0.4.
//!
//! It checks what would make a Prometheus scrape fail or record nonsense: the syntax of every
//! line, `# HELP`/`# TYPE` usage, duplicate series, and the shape of histograms. It does not
//! require the lines of one family to be contiguous: the scraper accepts interleaved
//! families, and a deployment gate stricter than the scraper would only block good releases.

use std::collections::{HashMap, HashSet};
use std::fmt;

/// What a valid exposition contains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ExpositionSummary {
    /// Metric families that have at least one sample (a histogram's `_bucket`, `_sum` and
    /// `_count` samples belong to one family).
    pub(crate) families: usize,
    /// Sample lines.
    pub(crate) samples: usize,
}

/// Why an exposition is invalid, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub(crate) struct ExpositionError {
    /// 1-based number of the offending line; 0 when the problem concerns the whole body.
    pub(crate) line_number: usize,
    /// The offending line, without its newline (empty when `line_number` is 0).
    pub(crate) line: String,
    /// What is wrong.
    pub(crate) problem: String,
}

impl ExpositionError {
    fn render(&self) -> String {
        if self.line_number == 0 {
            return self.problem.clone();
        }
        // A metrics line can be arbitrarily long; the start is enough to find it.
        const MAX: usize = 120;
        let line = match self.line.char_indices().nth(MAX) {
            Some((cut, _)) => format!("{}...", &self.line[..cut]),
            None => self.line.clone(),
        };
        format!("line {}: {}: `{line}`", self.line_number, self.problem)
    }
}

/// Validates a Prometheus text exposition (format version 0.0.4).
pub(crate) fn validate_exposition(text: &str) -> Result<ExpositionSummary, ExpositionError> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut validator = Validator::default();
    for (index, line) in lines.iter().enumerate() {
        validator
            .line(index + 1, line)
            .map_err(|problem| ExpositionError {
                line_number: index + 1,
                line: (*line).to_owned(),
                problem,
            })?;
    }
    validator.finish(&lines)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// Label pairs sorted by name, so that equal label sets compare equal.
type Labels = Vec<(String, String)>;

#[derive(Default)]
struct Validator {
    types: HashMap<String, MetricType>,
    helps: HashSet<String>,
    /// Every sample name seen, to reject a `# TYPE` that comes after its samples.
    sample_names: HashSet<String>,
    families: HashSet<String>,
    /// Line of each series, to reject duplicates.
    series: HashMap<(String, Labels), usize>,
    /// Histogram series, keyed by family and labels without `le`.
    histograms: HashMap<(String, Labels), Histogram>,
    samples: usize,
}

#[derive(Default)]
struct Histogram {
    first_line: usize,
    /// `(le, cumulative count, line)`.
    buckets: Vec<(f64, f64, usize)>,
    count: Option<(f64, usize)>,
}

impl Validator {
    fn line(&mut self, number: usize, line: &str) -> Result<(), String> {
        let trimmed = line.trim_start_matches(is_blank);
        if trimmed.is_empty() {
            return Ok(());
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            let (keyword, rest) = split_token(comment.trim_start_matches(is_blank));
            return match keyword {
                "HELP" => self.help(rest),
                "TYPE" => self.type_line(rest),
                // Any other comment is free text.
                _ => Ok(()),
            };
        }
        self.sample(number, trimmed)
    }

    fn help(&mut self, rest: &str) -> Result<(), String> {
        let (name, docstring) = split_token(rest);
        check_metric_name(name, "HELP")?;
        let mut chars = docstring.chars();
        while let Some(ch) = chars.next() {
            if ch == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                return Err("invalid escape in HELP text (only \\\\ and \\n are allowed)".into());
            }
        }
        if !self.helps.insert(name.to_owned()) {
            return Err(format!("second HELP line for {name}"));
        }
        Ok(())
    }

    fn type_line(&mut self, rest: &str) -> Result<(), String> {
        let (name, rest) = split_token(rest);
        check_metric_name(name, "TYPE")?;
        let (kind, extra) = split_token(rest);
        let kind = match kind {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Untyped,
            "" => return Err(format!("TYPE line for {name} without a type")),
            other => {
                return Err(format!(
                    "unknown metric type {other:?} (expected counter, gauge, histogram, summary or untyped)"
                ));
            }
        };
        if !extra.is_empty() {
            return Err(format!("unexpected text after the type of {name}"));
        }
        if self.types.contains_key(name) {
            return Err(format!("second TYPE line for {name}"));
        }
        let suffixes: &[&str] = match kind {
            MetricType::Histogram => &["", "_bucket", "_sum", "_count"],
            MetricType::Summary => &["", "_sum", "_count"],
            _ => &[""],
        };
        if suffixes
            .iter()
            .any(|s| self.sample_names.contains(&format!("{name}{s}")))
        {
            return Err(format!("TYPE line for {name} after its samples"));
        }
        self.types.insert(name.to_owned(), kind);
        Ok(())
    }

    fn sample(&mut self, number: usize, line: &str) -> Result<(), String> {
        let sample = parse_sample(line)?;
        let name = sample.name;
        let (family, kind, suffix) = self.family_of(name);
        let label = |wanted: &str| sample.labels.iter().find(|(n, _)| n == wanted);
        match (kind, suffix) {
            (MetricType::Histogram, "") => {
                return Err(format!(
                    "{name} is a histogram: its samples are {name}_bucket, {name}_sum and {name}_count"
                ));
            }
            (MetricType::Histogram, "_bucket") => {
                let (_, le) = label("le").ok_or_else(|| format!("{name} has no le label"))?;
                let le = parse_float(le)
                    .filter(|le| !le.is_nan())
                    .ok_or_else(|| format!("invalid le value {le:?}"))?;
                if sample.value.is_nan() || sample.value < 0.0 {
                    return Err("a bucket count must be a non-negative number".into());
                }
                self.histogram(family, &sample.labels, number)
                    .buckets
                    .push((le, sample.value, number));
            }
            (MetricType::Histogram, "_count") => {
                self.histogram(family, &sample.labels, number).count = Some((sample.value, number));
            }
            (MetricType::Summary, "") => {
                let (_, quantile) = label("quantile").ok_or_else(|| {
                    format!("{name} is a summary: its samples need a quantile label")
                })?;
                parse_float(quantile).ok_or_else(|| format!("invalid quantile {quantile:?}"))?;
            }
            _ => {}
        }
        let key = (name.to_owned(), sample.labels);
        if let Some(first) = self.series.insert(key, number) {
            return Err(format!(
                "duplicate sample: same name and labels as line {first}"
            ));
        }
        self.sample_names.insert(name.to_owned());
        self.families.insert(family.to_owned());
        self.samples += 1;
        Ok(())
    }

    /// The family a sample name belongs to, the family's type and the sample's suffix.
    fn family_of<'n>(&self, name: &'n str) -> (&'n str, MetricType, &'static str) {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                match self.types.get(base) {
                    Some(MetricType::Histogram) => return (base, MetricType::Histogram, suffix),
                    Some(MetricType::Summary) if suffix != "_bucket" => {
                        return (base, MetricType::Summary, suffix);
                    }
                    _ => {}
                }
            }
        }
        let kind = self.types.get(name).copied().unwrap_or(MetricType::Untyped);
        (name, kind, "")
    }

    fn histogram(&mut self, family: &str, labels: &Labels, line: usize) -> &mut Histogram {
        let without_le = labels.iter().filter(|(n, _)| n != "le").cloned().collect();
        self.histograms
            .entry((family.to_owned(), without_le))
            .or_insert_with(|| Histogram {
                first_line: line,
                ..Histogram::default()
            })
    }

    fn finish(self, lines: &[&str]) -> Result<ExpositionSummary, ExpositionError> {
        if self.samples == 0 {
            return Err(ExpositionError {
                line_number: 0,
                line: String::new(),
                problem: "no metrics".into(),
            });
        }
        let at = |line_number: usize, problem: String| ExpositionError {
            line_number,
            line: lines[line_number - 1].to_owned(),
            problem,
        };
        // Report the histogram that starts first, so that the error is deterministic.
        let mut histograms: Vec<_> = self.histograms.into_iter().collect();
        histograms.sort_by_key(|(_, h)| h.first_line);
        for ((family, labels), mut h) in histograms {
            let series = format!("{family}{}", render_labels(&labels));
            h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            for pair in h.buckets.windows(2) {
                let ((lo_le, lo, _), (hi_le, hi, line)) = (pair[0], pair[1]);
                if hi < lo {
                    return Err(at(
                        line,
                        format!(
                            "buckets of {series} are not cumulative: le=\"{}\" has {} but le=\"{}\" has {}",
                            float(hi_le),
                            float(hi),
                            float(lo_le),
                            float(lo)
                        ),
                    ));
                }
            }
            let Some(&(_, inf, inf_line)) = h.buckets.last().filter(|b| b.0 == f64::INFINITY)
            else {
                return Err(at(
                    h.first_line,
                    format!("{series} has no le=\"+Inf\" bucket"),
                ));
            };
            let Some((count, count_line)) = h.count else {
                return Err(at(
                    inf_line,
                    format!("{series} has no {family}_count sample"),
                ));
            };
            if count != inf {
                return Err(at(
                    count_line,
                    format!(
                        "{family}_count is {} but its le=\"+Inf\" bucket is {}",
                        float(count),
                        float(inf)
                    ),
                ));
            }
        }
        Ok(ExpositionSummary {
            families: self.families.len(),
            samples: self.samples,
        })
    }
}

struct Sample<'a> {
    name: &'a str,
    labels: Labels,
    value: f64,
}

/// Parses `name [{labels}] value [timestamp]`, leading blanks already removed.
fn parse_sample(line: &str) -> Result<Sample<'_>, String> {
    let end = line.find(|c| !is_metric_char(c)).unwrap_or(line.len());
    let (name, mut rest) = line.split_at(end);
    check_metric_name(name, "sample")?;
    if let Some(ch) = rest.chars().next().filter(|&c| !is_blank(c) && c != '{') {
        return Err(format!("invalid character {ch:?} in metric name"));
    }
    rest = rest.trim_start_matches(is_blank);
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
        labels.sort();
    }
    let (value, rest) = split_token(rest);
    if value.is_empty() {
        return Err("missing sample value".into());
    }
    let value = parse_float(value).ok_or_else(|| format!("invalid sample value {value:?}"))?;
    let (timestamp, rest) = split_token(rest);
    if !timestamp.is_empty() && timestamp.parse::<i64>().is_err() {
        return Err(format!(
            "invalid timestamp {timestamp:?} (must be integer milliseconds)"
        ));
    }
    if !rest.is_empty() {
        return Err("unexpected text after the timestamp".into());
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// Parses the label pairs after `{` and returns the text after the closing `}`.
fn parse_labels<'a>(mut rest: &'a str, labels: &mut Labels) -> Result<&'a str, String> {
    loop {
        rest = rest.trim_start_matches(is_blank);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let end = rest.find(|c: char| !is_label_char(c)).unwrap_or(rest.len());
        let (name, after) = rest.split_at(end);
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(match after.chars().next() {
                None => "unterminated label set".into(),
                Some(_) if !name.is_empty() => format!("invalid label name {name:?}"),
                Some(ch) => format!("expected a label name, found {ch:?}"),
            });
        }
        let after = after.trim_start_matches(is_blank);
        let Some(after) = after.strip_prefix('=') else {
            return Err(match after.chars().next() {
                Some(ch) => format!("invalid character {ch:?} after label name {name:?}"),
                None => "unterminated label set".into(),
            });
        };
        let Some(after) = after.trim_start_matches(is_blank).strip_prefix('"') else {
            return Err(format!("the value of label {name} must start with '\"'"));
        };
        let (value, after) = parse_label_value(after)?;
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("duplicate label {name}"));
        }
        labels.push((name.to_owned(), value));
        let after = after.trim_start_matches(is_blank);
        let mut chars = after.chars();
        rest = match chars.next() {
            Some(',') => chars.as_str(),
            Some('}') => return Ok(chars.as_str()),
            Some(ch) => {
                return Err(format!(
                    "expected ',' or '}}' after the value of label {name}, found {ch:?}"
                ));
            }
            None => return Err("unterminated label set".into()),
        };
    }
}

/// Reads a label value after its opening quote: the unescaped value and the rest after the
/// closing quote.
fn parse_label_value(text: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, ch)) = chars.next() {
        match ch {
            '"' => return Ok((value, &text[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                Some((_, other)) => {
                    return Err(format!(
                        "invalid escape \\{other} in label value (only \\\\, \\\" and \\n are allowed)"
                    ));
                }
                None => break,
            },
            _ => value.push(ch),
        }
    }
    Err("unterminated label value".into())
}

fn check_metric_name(name: &str, what: &str) -> Result<(), String> {
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && name.chars().all(is_metric_char);
    match (valid, name.is_empty()) {
        (true, _) => Ok(()),
        (false, true) => Err(format!("{what} line without a metric name")),
        (false, false) => Err(format!("invalid metric name {name:?}")),
    }
}

fn is_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits off the first blank-separated token; the rest starts at the next token.
fn split_token(text: &str) -> (&str, &str) {
    let text = text.trim_start_matches(is_blank);
    let end = text.find(is_blank).unwrap_or(text.len());
    (&text[..end], text[end..].trim_matches(is_blank))
}

/// Parses a float as Prometheus does (Go's `ParseFloat`): decimal, exponent, `+Inf`, `-Inf`,
/// `NaN`, case-insensitively for the special values.
fn parse_float(text: &str) -> Option<f64> {
    text.parse().ok()
}

fn float(value: f64) -> String {
    match value {
        f64::INFINITY => "+Inf".into(),
        f64::NEG_INFINITY => "-Inf".into(),
        v if v.is_nan() => "NaN".into(),
        v => v.to_string(),
    }
}

fn render_labels(labels: &Labels) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", pairs.join(","))
}

impl fmt::Display for ExpositionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} metric families, {} samples",
            self.families, self.samples
        )
    }
}

#[cfg(test)]
mod tests;
