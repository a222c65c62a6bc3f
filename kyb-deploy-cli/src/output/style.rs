//! Terminal styling: ANSI colours when allowed (a terminal, and `NO_COLOR` unset), plain text
//! otherwise.

/// Whether to colour output, and how.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Style {
    color: bool,
}

impl Style {
    pub(crate) fn new(color: bool) -> Self {
        Self { color }
    }

    /// Whether ANSI codes are written.
    pub(crate) fn color(self) -> bool {
        self.color
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub(crate) fn good(self, text: &str) -> String {
        self.paint("32", text)
    }

    pub(crate) fn bad(self, text: &str) -> String {
        self.paint("31", text)
    }

    pub(crate) fn error(self, text: &str) -> String {
        self.paint("1;31", text)
    }

    pub(crate) fn warn(self, text: &str) -> String {
        self.paint("1;33", text)
    }

    pub(crate) fn hint(self, text: &str) -> String {
        self.paint("1;36", text)
    }

    pub(crate) fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    pub(crate) fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
}

/// Whether colour is allowed on a terminal: `NO_COLOR` (any non-empty value) turns it off.
pub(crate) fn color_allowed(no_color: Option<std::ffi::OsString>) -> bool {
    no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_style_writes_no_escape_codes() {
        assert_eq!(Style::new(false).bad("x"), "x");
        assert_eq!(Style::new(true).bad("x"), "\x1b[31mx\x1b[0m");
        assert!(!color_allowed(Some("1".into())));
        assert!(color_allowed(Some("".into())));
        assert!(color_allowed(None));
    }
}
