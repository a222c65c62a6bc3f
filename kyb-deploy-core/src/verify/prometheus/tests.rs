use proptest::prelude::*;

use super::*;

#[test]
fn a_counter_family_counts_and_an_unterminated_label_is_located() {
    let body = "# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} 1027\n";
    let summary = validate_exposition(body).unwrap();
    assert_eq!((summary.families, summary.samples), (1, 1));

    let err = validate_exposition("up{job=\"api} 1\n").unwrap_err();
    assert_eq!(err.line_number, 1);
    assert!(err.problem.contains("unterminated"));
}

/// What a Go service exposes, trimmed: comments, typed and untyped families, labels with
/// escapes, special values, timestamps, a histogram and a summary.
const REALISTIC: &str = r#"# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
# HELP http_requests_total Total HTTP requests.\nBy code and method.
# TYPE http_requests_total counter
http_requests_total{code="200",method="get"} 1027 1395066363000
http_requests_total{code="400",method="post",} 3 1395066363000
  http_requests_total { code = "500" , method = "get" } 0
# A free comment, and an empty line below.

msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf -3982045
nan_and_negatives{kind="nan"} NaN
nan_and_negatives{kind="neg"} -Inf
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"#;

#[test]
fn realistic_exposition_is_valid() {
    let summary = validate_exposition(REALISTIC).unwrap();
    assert_eq!(
        summary,
        ExpositionSummary {
            families: 8,
            samples: 19
        }
    );
    assert_eq!(summary.to_string(), "8 metric families, 19 samples");
}

#[test]
fn histogram_label_sets_are_checked_separately() {
    let text = "# TYPE d histogram\n\
        d_bucket{path=\"/a\",le=\"1\"} 5\nd_bucket{path=\"/b\",le=\"1\"} 1\n\
        d_bucket{path=\"/a\",le=\"+Inf\"} 7\nd_bucket{path=\"/b\",le=\"+Inf\"} 2\n\
        d_count{path=\"/a\"} 7\nd_count{path=\"/b\"} 2\nd_sum{path=\"/a\"} 3\n";
    assert_eq!(validate_exposition(text).unwrap().families, 1);
}

#[track_caller]
fn assert_invalid(text: &str, line_number: usize, problem: &str) {
    let err = validate_exposition(text).expect_err(text);
    assert_eq!(err.line_number, line_number, "{err}");
    assert!(err.problem.contains(problem), "{problem:?} not in {err}");
    if line_number > 0 {
        assert_eq!(err.line, text.split('\n').nth(line_number - 1).unwrap());
    }
}

#[test]
fn empty_or_comment_only_bodies_have_no_metrics() {
    assert_invalid("", 0, "no metrics");
    assert_invalid("\n\n", 0, "no metrics");
    assert_invalid("# HELP up Whether up.\n# TYPE up gauge\n", 0, "no metrics");
    assert_eq!(
        validate_exposition("").unwrap_err().to_string(),
        "no metrics"
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let cases = [
        ("up 1\n1up 1\n", 2, "invalid metric name \"1up\""),
        ("up-time 1\n", 1, "invalid character '-' in metric name"),
        ("up{1a=\"x\"} 1\n", 1, "invalid label name"),
        (
            "up{a:b=\"x\"} 1\n",
            1,
            "invalid character ':' after label name",
        ),
        ("up{job=api} 1\n", 1, "must start with '\"'"),
        ("up{job=\"api} 1\n", 1, "unterminated label value"),
        ("up{job=\"a\\tb\"} 1\n", 1, "invalid escape \\t"),
        ("up{job=\"a\" x=\"b\"} 1\n", 1, "expected ',' or '}'"),
        ("up{job=\"a\",job=\"b\"} 1\n", 1, "duplicate label job"),
        ("up{job=\"a\"\n", 1, "unterminated label set"),
        ("up\n", 1, "missing sample value"),
        ("up one\n", 1, "invalid sample value \"one\""),
        ("up 1 1.5\n", 1, "invalid timestamp"),
        ("up 1 2 3\n", 1, "unexpected text after the timestamp"),
        ("# HELP\nup 1\n", 1, "HELP line without a metric name"),
        ("# HELP up a\\tb\nup 1\n", 1, "invalid escape in HELP"),
        (
            "# HELP up a\n# HELP up b\nup 1\n",
            2,
            "second HELP line for up",
        ),
        ("# TYPE up\nup 1\n", 1, "without a type"),
        (
            "# TYPE up meter\nup 1\n",
            1,
            "unknown metric type \"meter\"",
        ),
        (
            "# TYPE up gauge extra\nup 1\n",
            1,
            "unexpected text after the type",
        ),
        (
            "# TYPE up gauge\n# TYPE up counter\nup 1\n",
            2,
            "second TYPE line for up",
        ),
        (
            "up 1\n# TYPE up gauge\n",
            2,
            "TYPE line for up after its samples",
        ),
        (
            "d_count 1\n# TYPE d histogram\n",
            2,
            "TYPE line for d after its samples",
        ),
        (
            "up{a=\"1\"} 1\nx 2\nup{a=\"1\"} 3\n",
            3,
            "same name and labels as line 1",
        ),
        (
            "up{b=\"2\",a=\"1\"} 1\nup{a=\"1\",b=\"2\"} 1\n",
            2,
            "duplicate sample",
        ),
    ];
    for (text, line, problem) in cases {
        assert_invalid(text, line, problem);
    }
}

#[test]
fn histogram_and_summary_errors() {
    let h = "# TYPE d histogram\n";
    let cases = [
        (format!("{h}d 1\n"), 2, "d is a histogram"),
        (format!("{h}d_bucket 1\n"), 2, "d_bucket has no le label"),
        (
            format!("{h}d_bucket{{le=\"big\"}} 1\n"),
            2,
            "invalid le value",
        ),
        (format!("{h}d_bucket{{le=\"1\"}} -1\n"), 2, "non-negative"),
        (
            format!("{h}d_bucket{{le=\"1\"}} 5\nd_bucket{{le=\"2\"}} 4\n"),
            3,
            "not cumulative: le=\"2\" has 4 but le=\"1\" has 5",
        ),
        (
            format!("{h}d_bucket{{le=\"1\"}} 5\nd_count 5\n"),
            2,
            "no le=\"+Inf\" bucket",
        ),
        (format!("{h}d_count 5\n"), 2, "no le=\"+Inf\" bucket"),
        (
            format!("{h}d_bucket{{le=\"+Inf\"}} 5\n"),
            2,
            "no d_count sample",
        ),
        (
            format!("{h}d_bucket{{le=\"+Inf\"}} 5\nd_sum 1\nd_count 6\n"),
            4,
            "d_count is 6 but its le=\"+Inf\" bucket is 5",
        ),
        ("# TYPE s summary\ns 1\n".into(), 2, "need a quantile label"),
        (
            "# TYPE s summary\ns{quantile=\"x\"} 1\n".into(),
            2,
            "invalid quantile",
        ),
    ];
    for (text, line, problem) in &cases {
        assert_invalid(text, *line, problem);
    }
}

#[test]
fn error_display_names_line_and_shortens_it() {
    let long = format!("up{{a=\"{}}} 1\n", "x".repeat(300));
    let err = validate_exposition(&long).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with("line 1: unterminated label value: `up{a=\"xxx"),
        "{shown}"
    );
    assert!(shown.ends_with("...`") && shown.len() < 200, "{shown}");
}

/// One generated family: name, type, HELP text, and series by label set.
#[derive(Clone, Debug)]
struct Family {
    name: String,
    kind: &'static str,
    help: Option<String>,
    series: Vec<Series>,
}

/// Labels, value (of the sum for histograms and summaries), bucket increments, timestamp.
type Series = (Labels, f64, Vec<u32>, Option<i64>);

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders families and returns the text with its expected sample count.
fn render(families: &[Family]) -> (String, usize) {
    let (mut out, mut samples) = (String::new(), 0);
    for f in families {
        if let Some(help) = &f.help {
            let help = help.replace('\\', "\\\\").replace('\n', "\\n");
            out.push_str(&format!("# HELP {} {help}\n", f.name));
        }
        if f.kind != "untyped" || f.help.is_some() {
            out.push_str(&format!("# TYPE {} {}\n", f.name, f.kind));
        }
        for (labels, value, increments, ts) in &f.series {
            let ts = ts.map(|t| format!(" {t}")).unwrap_or_default();
            let line = |name: &str, extra: Option<(&str, String)>, value: String| {
                let mut pairs: Vec<String> = labels
                    .iter()
                    .map(|(n, v)| format!("{n}=\"{}\"", escape_label(v)))
                    .collect();
                pairs.extend(extra.map(|(n, v)| format!("{n}=\"{v}\"")));
                let labels = if pairs.is_empty() {
                    String::new()
                } else {
                    format!("{{{}}}", pairs.join(","))
                };
                format!("{name}{labels} {value}{ts}\n")
            };
            let name = &f.name;
            let total: u32 = increments.iter().sum();
            match f.kind {
                "histogram" => {
                    let mut cumulative = 0;
                    for (i, inc) in increments.iter().enumerate() {
                        cumulative += inc;
                        let le = format!("{}", (i as f64 + 1.0) * 0.25);
                        out.push_str(&line(
                            &format!("{name}_bucket"),
                            Some(("le", le)),
                            cumulative.to_string(),
                        ));
                    }
                    out.push_str(&line(
                        &format!("{name}_bucket"),
                        Some(("le", "+Inf".into())),
                        total.to_string(),
                    ));
                    out.push_str(&line(&format!("{name}_sum"), None, float(*value)));
                    out.push_str(&line(&format!("{name}_count"), None, total.to_string()));
                    samples += increments.len() + 3;
                }
                "summary" => {
                    for q in ["0.5", "0.99"] {
                        out.push_str(&line(name, Some(("quantile", q.into())), float(*value)));
                    }
                    out.push_str(&line(&format!("{name}_sum"), None, float(*value)));
                    out.push_str(&line(&format!("{name}_count"), None, total.to_string()));
                    samples += 4;
                }
                _ => {
                    out.push_str(&line(name, None, float(*value)));
                    samples += 1;
                }
            }
        }
    }
    (out, samples)
}

fn families() -> impl Strategy<Value = Vec<Family>> {
    let label_name =
        "[a-zA-Z_][a-zA-Z0-9_]{0,6}".prop_filter("reserved", |n| n != "le" && n != "quantile");
    let label_value = "[a-z \\\\\"\n,{}=é]{0,6}";
    let labels = proptest::collection::btree_map(label_name, label_value, 0..3);
    let value = prop_oneof![
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
    ];
    let series = (
        value,
        proptest::collection::vec(0u32..1000, 0..4),
        proptest::option::of(any::<i64>()),
    );
    let family = (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,8}",
        prop::sample::select(vec!["counter", "gauge", "untyped", "histogram", "summary"]),
        proptest::option::of("[a-zA-Z \\\\\n\"]{0,10}"),
        proptest::collection::btree_map(labels, series, 1..4),
    );
    proptest::collection::vec(family, 1..5).prop_map(|families| {
        families
            .into_iter()
            .enumerate()
            // The index suffix keeps names, and the suffixed names of histograms and
            // summaries, distinct across families.
            .map(|(i, (name, kind, help, series))| Family {
                name: format!("{name}_{i}"),
                kind,
                help,
                series: series
                    .into_iter()
                    .map(|(labels, (v, inc, ts))| (labels.into_iter().collect(), v, inc, ts))
                    .collect(),
            })
            .collect()
    })
}

/// Byte offsets of the quotes that delimit label values in a sample line.
fn delimiting_quotes(line: &str) -> Vec<usize> {
    let (mut quotes, mut inside, mut escaped) = (Vec::new(), false, false);
    for (i, ch) in line.char_indices().skip_while(|&(_, c)| c != '{') {
        match (inside, ch) {
            (true, _) if escaped => escaped = false,
            (true, '\\') => escaped = true,
            (_, '"') => {
                quotes.push(i);
                inside = !inside;
            }
            (false, '}') => break,
            _ => {}
        }
    }
    quotes
}

proptest! {
    #[test]
    fn generated_expositions_are_valid(families in families()) {
        let (text, samples) = render(&families);
        let summary = validate_exposition(&text);
        prop_assert_eq!(summary, Ok(ExpositionSummary { families: families.len(), samples }));
    }

    #[test]
    fn removing_a_label_quote_is_invalid(
        families in families(),
        line in any::<prop::sample::Index>(),
        quote in any::<prop::sample::Index>(),
    ) {
        let (text, _) = render(&families);
        let labelled: Vec<&str> = text.lines().filter(|l| !l.starts_with('#') && l.contains('{')).collect();
        prop_assume!(!labelled.is_empty());
        let target = *line.get(&labelled);
        let at = *quote.get(&delimiting_quotes(target));
        let mutated_line = format!("{}{}", &target[..at], &target[at + 1..]);
        let mutated = text.replacen(&format!("{target}\n"), &format!("{mutated_line}\n"), 1);
        let err = validate_exposition(&mutated);
        prop_assert!(err.is_err(), "{mutated}");
    }
}
