//! GitHub Actions: what a deploy or rollback run tells the workflow it runs in (automatic when
//! `GITHUB_ACTIONS=true`, or `--ci github`): a job summary appended to `$GITHUB_STEP_SUMMARY`,
//! step outputs appended to `$GITHUB_OUTPUT`, and `::error::` / `::warning::` annotations for
//! the failure and each warning (on stdout with human output; JSON output keeps stdout one
//! document, so it gets the files only).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use kyb_deploy_core::{Outcome, RollbackSummary, RunReport, StageResult};

use crate::args::{CiMode, OutputFormat};

/// Where the workflow reads what a run says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GithubActions {
    /// `$GITHUB_STEP_SUMMARY`: markdown appended per step.
    summary: Option<PathBuf>,
    /// `$GITHUB_OUTPUT`: `name=value` lines appended per step.
    outputs: Option<PathBuf>,
}

impl GithubActions {
    /// GitHub Actions when `mode` says so, or when it is `auto` and `var("GITHUB_ACTIONS")`
    /// is `true`; its files from `var`.
    pub(crate) fn detect(mode: CiMode, var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let on = match mode {
            CiMode::None => false,
            CiMode::Github => true,
            CiMode::Auto => var("GITHUB_ACTIONS").as_deref() == Some("true"),
        };
        let file = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        on.then(|| Self {
            summary: file("GITHUB_STEP_SUMMARY"),
            outputs: file("GITHUB_OUTPUT"),
        })
    }

    /// Writes the summary and the outputs of `report` (which exited `code`), and its
    /// annotations to `out` with human output.
    ///
    /// # Errors
    ///
    /// When a file cannot be appended to, or `out` written.
    pub(crate) fn announce(
        &self,
        report: &RunReport,
        code: i32,
        format: OutputFormat,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        if let Some(path) = &self.summary {
            append(path, &summary(report, code))?;
        }
        if let Some(path) = &self.outputs {
            append(path, &outputs(report, code))?;
        }
        if format == OutputFormat::Human {
            out.write_all(annotations(report).as_bytes())?;
            out.flush()?;
        }
        Ok(())
    }
}

fn append(path: &Path, text: &str) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
}

/// The outcome's name, as the JSON report spells it (`succeeded`, `rolled_back`, ...).
fn outcome_name(outcome: &Outcome) -> String {
    serde_json::to_value(outcome)
        .ok()
        .and_then(|v| v["outcome"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The release the environment went back to, when it was rolled back.
fn rolled_back_to(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::RolledBack { to, .. }
        | Outcome::TimedOut {
            rollback: Some(RollbackSummary::RolledBack { to }),
            ..
        }
        | Outcome::Cancelled {
            rollback: Some(RollbackSummary::RolledBack { to }),
            ..
        } => Some(to.version.to_string()),
        _ => None,
    }
}

/// The step outputs: outcome, exit_code, version, image, digest, url, record_id,
/// rolled_back_to (empty when none). Values are one line each.
fn outputs(report: &RunReport, code: i32) -> String {
    let release = report.release.as_ref();
    let image = release.map(|r| r.image.clone()).unwrap_or_default();
    let digest = image
        .split_once('@')
        .map(|(_, digest)| digest.to_owned())
        .unwrap_or_default();
    let version = report
        .version
        .as_ref()
        .map(|v| v.version.to_string())
        .unwrap_or_default();
    let pairs = [
        ("outcome", outcome_name(&report.outcome)),
        ("exit_code", code.to_string()),
        ("version", version),
        ("image", image),
        ("digest", digest),
        (
            "url",
            report
                .url
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        ("record_id", report.run_id.clone()),
        (
            "rolled_back_to",
            rolled_back_to(&report.outcome).unwrap_or_default(),
        ),
    ];
    let mut text = String::new();
    for (name, value) in pairs {
        let _ = writeln!(text, "{name}={}", one_line(&value));
    }
    text
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// A markdown table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

/// The job summary: the outcome, the release, the stages with their durations and results,
/// the verification checks with their latencies, and the warnings.
fn summary(report: &RunReport, code: i32) -> String {
    let mut md = String::new();
    let mark = if report.outcome.is_success() {
        "✅"
    } else {
        "❌"
    };
    let _ = writeln!(
        md,
        "### {mark} kyb-deploy {} to {}\n",
        report.operation.as_str(),
        report.environment
    );
    let _ = writeln!(
        md,
        "**{}** (exit {code}, run `{}`)\n",
        cell(&report.outcome.summary()),
        report.run_id
    );
    let _ = writeln!(md, "| | |\n|---|---|");
    if let Some(version) = &report.version {
        let _ = writeln!(md, "| version | `{}` |", version.version);
    }
    if let Some(release) = &report.release {
        let _ = writeln!(md, "| image | `{}` |", cell(&release.image));
    }
    if let Some(previous) = &report.previous {
        let _ = writeln!(md, "| previous | `{}` |", previous.version);
    }
    if let Some(url) = &report.url {
        let _ = writeln!(md, "| url | {url} |");
    }
    if let Some(to) = rolled_back_to(&report.outcome) {
        let _ = writeln!(md, "| rolled back to | `{to}` |");
    }
    let _ = writeln!(md, "| target | {} |\n", report.target);
    if !report.stages.is_empty() {
        let _ = writeln!(md, "| stage | result | time |\n|---|---|---|");
        for stage in &report.stages {
            let result = match &stage.result {
                StageResult::Succeeded => "ok".to_owned(),
                StageResult::Skipped { reason } => format!("skipped: {}", cell(reason)),
                StageResult::Failed { message } => format!("**failed**: {}", cell(message)),
            };
            let _ = writeln!(
                md,
                "| {} | {result} | {:.1} s |",
                stage.stage,
                stage.elapsed_ms as f64 / 1000.0
            );
        }
        md.push('\n');
    }
    for (title, verification) in [
        ("verification", report.verification.as_ref()),
        (
            "verification after the rollback",
            report.rollback_verification.as_ref(),
        ),
    ] {
        let Some(verification) = verification else {
            continue;
        };
        let _ = writeln!(
            md,
            "| {title} | result | requests | p50 | p95 |\n|---|---|---|---|---|"
        );
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0} ms"));
        for check in &verification.checks {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                cell(&check.name),
                if check.passed {
                    "ok".to_owned()
                } else {
                    format!("**failed**: {}", cell(&check.detail))
                },
                check.attempts,
                ms(check.latency.p50_ms),
                ms(check.latency.p95_ms)
            );
        }
        md.push('\n');
    }
    for warning in &report.warnings {
        let _ = writeln!(md, "> ⚠️ {}", one_line(warning));
    }
    md.push('\n');
    md
}

/// `::error::` for a failed run, `::warning::` for each warning. Messages are escaped as
/// the runner expects (`%`, CR and LF).
fn annotations(report: &RunReport) -> String {
    let escape = |text: &str| {
        text.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    // A property value also escapes ',' and ':', which separate properties.
    let title = escape(&format!(
        "kyb-deploy {} to {}",
        report.operation.as_str(),
        report.environment
    ))
    .replace(',', "%2C")
    .replace(':', "%3A");
    let mut text = String::new();
    if !report.outcome.is_success() {
        let _ = writeln!(
            text,
            "::error title={title}::{}",
            escape(&report.outcome.summary())
        );
    }
    for warning in &report.warnings {
        let _ = writeln!(text, "::warning title={title}::{}", escape(warning));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn on_in_github_actions_or_when_asked() {
        let actions = vars(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", "/s"),
            ("GITHUB_OUTPUT", ""),
        ]);
        assert_eq!(
            GithubActions::detect(CiMode::Auto, &actions),
            Some(GithubActions {
                summary: Some("/s".into()),
                outputs: None
            })
        );
        assert_eq!(GithubActions::detect(CiMode::None, &actions), None);
        assert_eq!(GithubActions::detect(CiMode::Auto, vars(&[])), None);
        assert!(GithubActions::detect(CiMode::Github, vars(&[])).is_some());
    }

    #[test]
    fn values_and_annotations_stay_on_one_line() {
        assert_eq!(one_line("a\nb\r\nc"), "a b  c");
        assert_eq!(cell("a|b"), "a\\|b");
    }
}
