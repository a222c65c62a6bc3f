//! The one redaction every URL and every peer's text passes before kyb-deploy prints it,
//! records it in the ledger or sends it in a notification.
//!
//! Two functions share the same rules: [`redact_url`] for a URL the tool holds (a base URL,
//! an endpoint) and [`redact_text`] for text that may quote one (an error body from a
//! registry, an engine message). A secret is replaced by the word `redacted`; everything else
//! stays as it was, so the result still says which host and which path were involved.

use url::Url;

/// What a secret is replaced with.
const REDACTED: &str = "redacted";

/// Query parameter names whose values are secrets (compared without case, `-` read as `_`).
const SECRET_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "session_token",
    "private_token",
    "auth",
    "key",
    "api_key",
    "apikey",
    "secret",
    "client_secret",
    "signature",
    "sig",
    "password",
    "passwd",
    "pwd",
    "credential",
    "x_amz_signature",
    "x_amz_security_token",
    "x_amz_credential",
];

/// Of those, the names too common in ordinary words to be treated as secrets outside a URL's
/// query (`key=` is a secret in `?key=…`, not in `duplicate key=app`).
const URL_ONLY_PARAMS: &[&str] = &["auth", "key", "sig", "credential"];

/// `url` with its secrets replaced by `redacted`: the username and password of its userinfo,
/// and the values of secret-looking query (and fragment) parameters such as `token`,
/// `access_token`, `key`, `secret`, `signature`, `sig`, `password` or `X-Amz-Signature`.
/// Scheme, host, port, path and every other parameter stay readable.
///
/// ```
/// use kyb_deploy_core::{Url, redact_url};
///
/// let url = Url::parse("https://ci:s3cret@api.example.com/health?token=abc&verbose=1").unwrap();
/// assert_eq!(
///     redact_url(&url),
///     "https://redacted:redacted@api.example.com/health?token=redacted&verbose=1"
/// );
/// ```
pub fn redact_url(url: &Url) -> String {
    let mut url = url.clone();
    if !url.username().is_empty() {
        // Fails only for URLs that cannot have userinfo, which then have none to hide.
        let _ = url.set_username(REDACTED);
    }
    if url.password().is_some() {
        let _ = url.set_password(Some(REDACTED));
    }
    if let Some(query) = url.query() {
        let query = redact_query(query);
        url.set_query(Some(&query));
    }
    if let Some(fragment) = url.fragment() {
        // OAuth puts tokens in the fragment (`#access_token=…`).
        let fragment = redact_query(fragment);
        url.set_fragment(Some(&fragment));
    }
    url.into()
}

/// `text` with the credentials a peer may echo replaced by `redacted`:
///
/// - `Authorization:` and `Proxy-Authorization:` header values in any case and any scheme
///   (the scheme stays: `Authorization: Basic redacted`), also in JSON (`"Authorization":
///   "…"`) and in Go's header maps (`Authorization:[…]`); likewise the Docker engine's
///   `X-Registry-Auth`, `Cookie` and `Set-Cookie`;
/// - bare `Basic <base64 user:password>` and `Bearer <token>`;
/// - the userinfo of URLs (`https://user:pass@host`) and their secret-looking query
///   parameters, as [`redact_url`] does;
/// - `name=value` and `"name": "value"` pairs whose name is a secret (`password`, `token`,
///   `client_secret`, `X-Amz-Security-Token`, `X-Amz-Credential`, …).
///
/// Text without such a credential comes back unchanged.
///
/// ```
/// use kyb_deploy_core::redact_text;
///
/// let body = r#"denied: request had {"Authorization": "Basic Y2k6aHVudGVyMg=="}"#;
/// assert_eq!(
///     redact_text(body),
///     r#"denied: request had {"Authorization": "Basic redacted"}"#
/// );
/// assert_eq!(redact_text("unauthorized: authentication required"), "unauthorized: authentication required");
/// ```
pub fn redact_text(text: &str) -> String {
    let text = redact_urls_in_text(text);
    let text = redact_pairs(&text);
    redact_bare_schemes(&text)
}

/// Serialises an optional URL through [`redact_url`], for report fields (`serialize_with`).
pub(crate) fn serialize_redacted_url<S: serde::Serializer>(
    url: &Option<Url>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => serializer.serialize_some(&redact_url(url)),
        None => serializer.serialize_none(),
    }
}

/// Whether a parameter named `name` (possibly percent-encoded) holds a secret; `in_url` for a
/// URL's query, where the short names count too.
fn is_secret_name(name: &str, in_url: bool) -> bool {
    let decoded = url::form_urlencoded::parse(name.as_bytes())
        .next()
        .map_or_else(|| name.to_owned(), |(k, _)| k.into_owned());
    let name = decoded.to_ascii_lowercase().replace('-', "_");
    if !in_url && URL_ONLY_PARAMS.contains(&name.as_str()) {
        return false;
    }
    SECRET_PARAMS.contains(&name.as_str())
        || ["token", "secret", "password", "signature", "_key", "apikey"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// A query string (or fragment) with the values of secret parameters replaced, the rest
/// byte for byte as it was.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() && is_secret_name(name, true) => {
                format!("{name}={REDACTED}")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Bytes that end a URL quoted in text.
fn ends_url(byte: u8) -> bool {
    byte.is_ascii_whitespace() || matches!(byte, b'"' | b'<' | b'>' | b'`' | b'\\')
}

/// Replaces userinfo and secret query parameters in every `scheme://…` of `text`.
fn redact_urls_in_text(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let start = search + found + 3;
        let mut end = start;
        while end < bytes.len() && !ends_url(bytes[end]) {
            end += 1;
        }
        // Punctuation that ends a sentence or closes a bracket is not part of the URL.
        while end > start && b").,;:!?]}'".contains(&bytes[end - 1]) {
            end -= 1;
        }
        search = end.max(start);
        let rest = &text[start..end];
        let redacted = redact_url_rest(rest);
        if redacted != rest {
            out.push_str(&text[copied..start]);
            out.push_str(&redacted);
            copied = end;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// What follows `scheme://` in a URL, redacted.
fn redact_url_rest(rest: &str) -> String {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut out = String::with_capacity(rest.len());
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(if authority[..at].contains(':') {
                "redacted:redacted"
            } else {
                REDACTED
            });
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (tail, None),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            out.push_str(&redact_query(query));
        }
        None => out.push_str(before_fragment),
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(&redact_query(fragment));
    }
    out
}

/// Bytes of a header or parameter name.
fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// Bytes that end an unquoted parameter value in text.
fn ends_value(byte: u8) -> bool {
    byte.is_ascii_whitespace()
        || matches!(
            byte,
            b'&' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'\\' | b',' | b';' | b')' | b']' | b'}'
        )
}

/// What a name found in text introduces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pair {
    /// A credential header: `Authorization`, `Proxy-Authorization`, the engine's
    /// `X-Registry-Auth`, `Cookie`, `Set-Cookie`.
    Header,
    /// A secret parameter.
    Secret,
}

fn classify(name: &str) -> Option<Pair> {
    let lower = name.to_ascii_lowercase();
    if lower == "authorization"
        || lower.ends_with("-authorization")
        || lower.ends_with("_authorization")
        // The Docker engine API's credential header, and session cookies.
        || ["x-registry-auth", "cookie", "set-cookie"].contains(&lower.as_str())
    {
        Some(Pair::Header)
    } else if is_secret_name(name, false) {
        Some(Pair::Secret)
    } else {
        None
    }
}

/// The index after a quote (`"`, `'` or an escaped `\"`) at `at`, or `at` when there is none.
fn skip_quote(bytes: &[u8], at: usize) -> usize {
    match bytes.get(at..) {
        Some([b'\\', b'"', ..]) => at + 2,
        Some([b'"' | b'\'', ..]) => at + 1,
        _ => at,
    }
}

fn skip_blanks(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(|b| *b == b' ' || *b == b'\t') {
        at += 1;
    }
    at
}

/// The index of `needle` at or after `from`, else the end of the line (or text).
fn find_or_line_end(text: &str, from: usize, needle: &str) -> usize {
    let from = from.min(text.len());
    let line_end = text[from..]
        .find(['\n', '\r'])
        .map_or(text.len(), |i| from + i);
    text[from..line_end]
        .find(needle)
        .map_or(line_end, |i| from + i)
}

/// Replaces the values of `Authorization`-like headers and secret `name=value` /
/// `"name": "value"` pairs.
fn redact_pairs(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !is_name_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_name_byte(bytes[i]) {
            i += 1;
        }
        let Some(kind) = classify(&text[start..i]) else {
            continue;
        };
        let quoted_name = start > 0 && matches!(bytes[start - 1], b'"' | b'\'');
        let separator = skip_blanks(bytes, skip_quote(bytes, i));
        let accepted = match (kind, bytes.get(separator)) {
            (Pair::Header, Some(b':' | b'=')) | (Pair::Secret, Some(b'=')) => true,
            // `token: expired` is prose; `"token": "…"` is JSON.
            (Pair::Secret, Some(b':')) => quoted_name,
            _ => false,
        };
        if !accepted {
            continue;
        }
        let value_at = skip_blanks(bytes, separator + 1);
        let (value_start, value_end) = value_span(text, value_at, kind);
        if value_start >= value_end {
            continue;
        }
        let value = &text[value_start..value_end];
        let replacement = match kind {
            Pair::Header => match header_scheme(value) {
                Some(scheme) => format!("{scheme} {REDACTED}"),
                None => REDACTED.to_owned(),
            },
            Pair::Secret => REDACTED.to_owned(),
        };
        out.push_str(&text[copied..value_start]);
        out.push_str(&replacement);
        copied = value_end;
        i = value_end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The value starting at `at`: inside its quotes or brackets when it has them (the quotes
/// stay), else up to where a value of this kind ends.
fn value_span(text: &str, at: usize, kind: Pair) -> (usize, usize) {
    let bytes = text.as_bytes();
    match bytes.get(at..) {
        None | Some([]) => (at, at),
        Some([b'\\', b'"', ..]) => (at + 2, find_or_line_end(text, at + 2, "\\\"")),
        Some([b'"', ..]) => (at + 1, find_or_line_end(text, at + 1, "\"")),
        Some([b'\'', ..]) => (at + 1, find_or_line_end(text, at + 1, "'")),
        Some([b'[', ..]) => (at + 1, find_or_line_end(text, at + 1, "]")),
        Some(_) if kind == Pair::Secret => {
            let mut end = at;
            while end < bytes.len() && !ends_value(bytes[end]) {
                end += 1;
            }
            (at, end)
        }
        Some(_) => (at, unquoted_header_end(text, at)),
    }
}

/// Where an unquoted header value ends: the end of the line, or a quote that closes the
/// string the header was quoted in. A quote right after `=` opens a parameter of the scheme
/// (`Digest username="ci", response="…"`) and is skipped, so the value runs on; when that
/// misreads base64 padding before a closing quote, more is redacted, never less.
fn unquoted_header_end(text: &str, at: usize) -> usize {
    let bytes = text.as_bytes();
    let mut end = at;
    while end < bytes.len() && bytes[end] != b'\n' && bytes[end] != b'\r' {
        let quote = match bytes[end..] {
            [b'\\', b'"', ..] => "\\\"",
            [b'"', ..] => "\"",
            [b'\'', ..] => "'",
            _ => {
                end += 1;
                continue;
            }
        };
        if end == at || bytes[end - 1] != b'=' {
            break;
        }
        let close = find_or_line_end(text, end + quote.len(), quote);
        if !text[close..].starts_with(quote) {
            // The parameter runs to the end of the line, and so does the value.
            end = close;
            break;
        }
        end = close + quote.len();
    }
    while end > at && bytes[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    end
}

/// The scheme word of a header value (`Basic`, `Bearer`, `AWS4-HMAC-SHA256`), when one is
/// followed by credentials.
fn header_scheme(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    let word = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    (word && !rest.trim().is_empty()).then_some(scheme)
}

/// Bytes of a `Basic` or `Bearer` credential (base64, base64url and RFC 6750's b64token).
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=' | b'.' | b'_' | b'~' | b'-')
}

/// Replaces the credential after a bare `Basic` or `Bearer` (no header name before it).
fn redact_bare_schemes(text: &str) -> String {
    let bytes = text.as_bytes();
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let scheme_len = if lower[i..].starts_with("basic") {
            5
        } else if lower[i..].starts_with("bearer") {
            6
        } else {
            i += 1;
            // Step over a whole character so that `lower[i..]` stays on a boundary.
            while i < bytes.len() && !text.is_char_boundary(i) {
                i += 1;
            }
            continue;
        };
        let basic = scheme_len == 5;
        let word_start = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let token_start = skip_blanks(bytes, i + scheme_len);
        i += scheme_len;
        if !word_start || token_start == i {
            continue;
        }
        let mut token_end = token_start;
        while token_end < bytes.len() && is_token_byte(bytes[token_end]) {
            token_end += 1;
        }
        let token = &text[token_start..token_end];
        let credential = if basic {
            is_basic_credential(token)
        } else {
            is_bearer_token(token)
        };
        if credential {
            out.push_str(&text[copied..token_start]);
            out.push_str(REDACTED);
            copied = token_end;
        }
        i = token_end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Whether `token` is base64 of `user:password` (so `Basic auth` or `Basic realm=` are not).
fn is_basic_credential(token: &str) -> bool {
    token.len() >= 4 && decode_base64(token).is_some_and(|bytes| bytes.contains(&b':'))
}

/// Whether `token` looks like a bearer token rather than a word (`Bearer realm=…`, `bearer
/// token-based`): no `=` before its padding, and a digit in it or the length of a real one.
fn is_bearer_token(token: &str) -> bool {
    let unpadded = token.trim_end_matches('=');
    !unpadded.contains('=')
        && unpadded != REDACTED
        && ((unpadded.len() >= 6 && unpadded.bytes().any(|b| b.is_ascii_digit()))
            || unpadded.len() >= 20)
}

/// Standard or URL-safe base64, padding optional; `None` when `text` is not base64.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
