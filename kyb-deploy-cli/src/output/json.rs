//! The JSON documents of `--output json`: one per command, on stdout.

use std::io::Write;

use serde::Serialize;
use serde::ser::SerializeMap;

/// Version of the JSON documents' schema (docs/cli.md, "JSON output"). Bumped only when a
/// field changes meaning or disappears; new fields may appear without a bump.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// `{"schema_version": 1, "exit_code": N, "<key>": payload}`, in that order.
struct Document<'a, T> {
    exit_code: i32,
    key: &'a str,
    payload: &'a T,
}

impl<T: Serialize> Serialize for Document<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("schema_version", &SCHEMA_VERSION)?;
        map.serialize_entry("exit_code", &self.exit_code)?;
        map.serialize_entry(self.key, self.payload)?;
        map.end()
    }
}

/// Writes `{"schema_version": 1, "exit_code": N, "<key>": payload}` and a newline.
pub(crate) fn write_document(
    out: &mut dyn Write,
    exit_code: i32,
    key: &str,
    payload: &impl Serialize,
) -> std::io::Result<()> {
    let document = Document {
        exit_code,
        key,
        payload,
    };
    serde_json::to_writer_pretty(&mut *out, &document).map_err(std::io::Error::other)?;
    writeln!(out)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_carry_the_schema_version_and_exit_code_first() {
        let mut out = Vec::new();
        write_document(&mut out, 3, "check", &serde_json::json!({"ok": false})).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("{\n  \"schema_version\": 1,\n  \"exit_code\": 3,\n"),
            "{text}"
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["exit_code"], 3);
        assert_eq!(value["check"]["ok"], false);
        assert!(text.ends_with("}\n"));
    }
}
