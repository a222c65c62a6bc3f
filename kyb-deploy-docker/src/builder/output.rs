//! The build output: lines for events, and what a failure shows.

use std::collections::VecDeque;

use super::Platform;
use kyb_deploy_core::StageProgress;

/// How many lines of build output a failure shows.
const FAILURE_LINES: usize = 15;

/// The build output: whole lines out of the engine's chunks, the current step and the last
/// lines for an error.
#[derive(Debug, Default)]
pub(super) struct BuildOutput {
    partial: String,
    step: Option<String>,
    last: VecDeque<String>,
}

impl BuildOutput {
    pub(super) fn push(&mut self, text: &str, progress: &StageProgress) {
        self.partial.push_str(text);
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            self.line(line.trim_end_matches(['\n', '\r']), progress);
        }
    }

    pub(super) fn finish(&mut self, progress: &StageProgress) {
        let rest = std::mem::take(&mut self.partial);
        self.line(rest.trim_end(), progress);
    }

    fn line(&mut self, line: &str, progress: &StageProgress) {
        if line.trim().is_empty() {
            return;
        }
        if line.starts_with("Step ") && line.contains(" : ") {
            self.step = Some(line.to_owned());
        }
        progress.log(line);
        if self.last.len() == FAILURE_LINES {
            self.last.pop_front();
        }
        self.last.push_back(line.to_owned());
    }

    /// The message of a failed build: the step, what the engine said, the last lines.
    pub(super) fn failure(
        &self,
        reference: &str,
        platform: Option<&Platform>,
        error: &bollard::errors::Error,
    ) -> String {
        let said = match error {
            bollard::errors::Error::DockerStreamError { error } => error.trim().to_owned(),
            bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            } => {
                format!("{} (HTTP {status_code})", message.trim())
            }
            other => other.to_string(),
        };
        let mut message = format!("failed to build {reference}");
        if let Some(platform) = platform {
            message.push_str(&format!(" for {platform}"));
        }
        match &self.step {
            Some(step) => message.push_str(&format!(" at {step}: {said}")),
            None => message.push_str(&format!(": {said}")),
        }
        if said.contains("exec format error")
            && let Some(platform) = platform
        {
            message.push_str(&format!(
                " (this engine cannot run {platform} programs: install emulation \
                 (binfmt/qemu-user-static) or build on a {platform} machine)"
            ));
        }
        if !self.last.is_empty() {
            message.push_str(&format!(
                "\nlast {} lines of build output:",
                self.last.len()
            ));
            for line in &self.last {
                message.push_str("\n  | ");
                message.push_str(line);
            }
        }
        message
    }
}
