//! Printing an error: `error:` with its message, a `caused by:` line per source, and a
//! `hint:` where one helps.

use serde::Serialize;

use super::style::Style;
use crate::error::CliError;

/// An error as `--output json` reports it.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorDocument {
    message: String,
    causes: Vec<String>,
    hint: Option<String>,
}

impl ErrorDocument {
    pub(crate) fn new(error: &CliError) -> Self {
        Self {
            message: error.to_string(),
            causes: error.causes(),
            hint: error.hint(),
        }
    }
}

/// The human form, ending with a newline.
pub(crate) fn render(error: &CliError, style: Style) -> String {
    let mut text = format!("{} {error}\n", style.error("error:"));
    for cause in error.causes() {
        text.push_str(&format!("{} {cause}\n", style.bold("caused by:")));
    }
    if let Some(hint) = error.hint() {
        text.push_str(&format!("{} {hint}\n", style.hint("hint:")));
    }
    text
}

#[cfg(test)]
mod tests {
    use kyb_deploy_core::Error;

    use super::*;

    #[test]
    fn message_then_causes_then_hint() {
        let error = CliError::from(Error::UnknownEnvironment {
            name: "nosuch".into(),
            valid: vec!["production".into(), "staging".into()],
        });
        let text = render(&error, Style::new(false));
        assert_eq!(
            text,
            "error: unknown environment \"nosuch\"; valid environments: production, staging\n\
             hint: pick one of the environments above, or define [environments.nosuch] in the configuration file\n"
        );
    }
}
