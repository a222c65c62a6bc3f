//! Tables of ledger records (`history`, `status`).

use kyb_deploy_core::{DeploymentRecord, RecordStatus};

use super::format;

/// A table of records with a header line, one record per line, columns aligned.
pub(crate) fn records(records: &[&DeploymentRecord]) -> String {
    let header = [
        "RUN",
        "STARTED",
        "ENV",
        "OP",
        "VERSION",
        "STATUS",
        "ACTOR",
        "ROLLED BACK TO",
        "NOTES",
    ];
    let rows: Vec<Vec<String>> = records.iter().map(|r| row(r)).collect();
    columns(&header, &rows)
}

/// Rows under a header, each column as wide as its widest cell; the last column is not
/// padded.
pub(crate) fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for cells in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

fn row(r: &DeploymentRecord) -> Vec<String> {
    let rolled_back_to = match &r.rollback {
        Some(d) if d.succeeded => {
            d.to.as_ref()
                .map_or_else(|| "yes".to_owned(), |to| to.version.to_string())
        }
        Some(_) => "failed".to_owned(),
        None => "-".to_owned(),
    };
    vec![
        r.id.clone(),
        format::timestamp(r.started_at),
        r.environment.clone(),
        r.operation.as_str().to_owned(),
        r.version.to_string(),
        r.status.as_str().to_owned(),
        r.actor.clone(),
        rolled_back_to,
        notes(r).join(", "),
    ]
}

/// Flags worth a glance: forced, tests skipped, dirty tree, never finished.
pub(crate) fn notes(r: &DeploymentRecord) -> Vec<&'static str> {
    let mut notes = Vec::new();
    if r.status == RecordStatus::InProgress {
        notes.push("never finished");
    }
    if r.forced {
        notes.push("forced");
    }
    if r.skipped_tests {
        notes.push("tests skipped");
    }
    if r.dirty {
        notes.push("dirty tree");
    }
    if r.rollback.as_ref().is_some_and(|d| d.by_platform) {
        notes.push("rolled back by the platform");
    }
    notes
}

#[cfg(test)]
mod tests {
    use kyb_deploy_core::{Operation, Outcome, Release, Stage, Version};

    use super::*;

    fn record(id: &str, version: &str) -> DeploymentRecord {
        let mut r = DeploymentRecord::start(
            id,
            Operation::Deploy,
            "staging",
            "fake",
            Version::parse(version).unwrap(),
        );
        r.actor = "alice".into();
        r.started_at = time::macros::datetime!(2025-11-26 06:29:01 UTC);
        r
    }

    #[test]
    fn columns_align_and_flags_show() {
        let ok = {
            let mut r = record("run-1", "v1");
            r.finish(Outcome::Succeeded {
                release: Release::new(Version::parse("v1").unwrap(), "repo:v1"),
                dry_run: false,
            });
            r
        };
        let rolled = {
            let mut r = record("run-2", "v2.0.0");
            r.forced = true;
            r.skipped_tests = true;
            r.finish(Outcome::RolledBack {
                stage: Stage::Verify,
                reason: "x".into(),
                to: Release::new(Version::parse("v1").unwrap(), "repo:v1"),
                by_platform: false,
            });
            r
        };
        let open = record("run-3", "v3");
        let text = records(&[&ok, &rolled, &open]);
        assert_eq!(
            text,
            "\
RUN    STARTED               ENV      OP      VERSION  STATUS       ACTOR  ROLLED BACK TO  NOTES
run-1  2025-11-26 06:29:01Z  staging  deploy  v1       succeeded    alice  -
run-2  2025-11-26 06:29:01Z  staging  deploy  v2.0.0   rolled_back  alice  v1              forced, tests skipped
run-3  2025-11-26 06:29:01Z  staging  deploy  v3       in_progress  alice  -               never finished
"
        );
    }
}
