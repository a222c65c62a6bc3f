//! A checker of the Prometheus text exposition format 0.0.4, strict enough for the tests.

use std::collections::{BTreeMap, HashMap};

/// Label names and values.
type Labels = Vec<(String, String)>;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sample {
    pub(super) name: String,
    pub(super) labels: Labels,
    pub(super) value: f64,
}

impl Sample {
    pub(super) fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Parses `text`, checking that every sample belongs to a family whose `# TYPE` came first
/// and that histograms are well formed; returns the samples.
pub(super) fn parse(text: &str) -> Result<Vec<Sample>, String> {
    if !text.ends_with('\n') {
        return Err("the exposition must end with a line feed".to_owned());
    }
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let context = |problem: &str| format!("line {}: {problem}: {line:?}", number + 1);
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(name), Some(_)) if is_name(name) => {}
                (Some("TYPE"), Some(name), Some(kind)) if is_name(name) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(context("unknown metric type"));
                    }
                    if samples
                        .iter()
                        .any(|s: &Sample| family(&s.name, &types) == name)
                    {
                        return Err(context("TYPE after samples of the family"));
                    }
                    if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(context("second TYPE of the family"));
                    }
                }
                (Some("HELP" | "TYPE"), ..) => return Err(context("malformed HELP or TYPE")),
                _ => {}
            }
            continue;
        }
        let sample = parse_sample(line).map_err(|problem| context(&problem))?;
        if !types.contains_key(family(&sample.name, &types)) {
            return Err(context("sample before the TYPE of its family"));
        }
        samples.push(sample);
    }
    for (name, kind) in &types {
        if kind == "histogram" {
            check_histogram(name, &samples)?;
        }
    }
    Ok(samples)
}

/// The family of a sample name: a histogram's suffixes are stripped.
fn family<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types.get(base).is_some_and(|kind| kind == "histogram")
        {
            return base;
        }
    }
    name
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses `name{label="value",...} value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !is_name(name) {
        return Err("invalid metric name".to_owned());
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let mut chars = after_brace.char_indices().peekable();
        loop {
            let Some(&(start, c)) = chars.peek() else {
                return Err("unclosed label set".to_owned());
            };
            if c == '}' {
                rest = &after_brace[start + 1..];
                break;
            }
            let eq = after_brace[start..].find('=').ok_or("label without '='")? + start;
            let label = &after_brace[start..eq];
            if !is_name(label) || label.contains(':') {
                return Err(format!("invalid label name {label:?}"));
            }
            while chars.next_if(|&(i, _)| i <= eq).is_some() {}
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("label value not quoted".to_owned());
            }
            let mut value = String::new();
            loop {
                match chars.next().map(|(_, c)| c) {
                    Some('"') => break,
                    Some('\\') => match chars.next().map(|(_, c)| c) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        _ => return Err("invalid escape in label value".to_owned()),
                    },
                    Some('\n') | None => return Err("unterminated label value".to_owned()),
                    Some(c) => value.push(c),
                }
            }
            labels.push((label.to_owned(), value));
            if chars.next_if(|&(_, c)| c == ',').is_none()
                && chars.peek().map(|&(_, c)| c) != Some('}')
            {
                return Err("labels must be separated by ','".to_owned());
            }
        }
    }
    let mut fields = rest
        .strip_prefix(' ')
        .ok_or("no space before the value")?
        .split(' ');
    let value = match fields.next().ok_or("no value")? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        number => number
            .parse()
            .map_err(|_| format!("invalid value {number:?}"))?,
    };
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("invalid timestamp {timestamp:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".to_owned());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Buckets per label set are cumulative, ordered by `le`, end with `+Inf` equal to `_count`,
/// and `_sum` is present.
fn check_histogram(name: &str, samples: &[Sample]) -> Result<(), String> {
    let others = |sample: &Sample| -> Labels {
        let mut labels: Vec<_> = sample
            .labels
            .iter()
            .filter(|(key, _)| key != "le")
            .cloned()
            .collect();
        labels.sort();
        labels
    };
    let mut buckets: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    let bucket_name = format!("{name}_bucket");
    for sample in samples.iter().filter(|s| s.name == bucket_name) {
        let le = match sample
            .label("le")
            .ok_or(format!("{bucket_name} without le"))?
        {
            "+Inf" => f64::INFINITY,
            le => le
                .parse()
                .map_err(|_| format!("{bucket_name}: invalid le {le:?}"))?,
        };
        buckets
            .entry(others(sample))
            .or_default()
            .push((le, sample.value));
    }
    for (labels, series) in &buckets {
        let find = |suffix: &str| {
            samples
                .iter()
                .find(|s| s.name == format!("{name}{suffix}") && others(s) == *labels)
                .map(|s| s.value)
                .ok_or(format!("{name}{suffix} missing for {labels:?}"))
        };
        let count = find("_count")?;
        find("_sum")?;
        if !series
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        {
            return Err(format!(
                "{name} buckets not cumulative for {labels:?}: {series:?}"
            ));
        }
        if series.last() != Some(&(f64::INFINITY, count)) {
            return Err(format!(
                "{name} must end with le=\"+Inf\" equal to _count for {labels:?}"
            ));
        }
    }
    Ok(())
}

#[test]
fn the_checker_rejects_malformed_expositions() {
    let valid = "# HELP h x\n# TYPE h histogram\nh_bucket{a=\"1\",le=\"1\"} 1\nh_bucket{a=\"1\",le=\"+Inf\"} 2\nh_sum{a=\"1\"} 3\nh_count{a=\"1\"} 2\n";
    assert!(parse(valid).is_ok());
    for invalid in [
        "c 1\n",
        "# TYPE c counter\nc{a=\"1} 1\n",
        "# TYPE c counter\nc{a=1} 1\n",
        "# TYPE c counter\nc one\n",
        "# TYPE c counter\nc 1",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
    ] {
        assert!(parse(invalid).is_err(), "{invalid:?}");
    }
}
