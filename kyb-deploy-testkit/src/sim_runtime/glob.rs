//! Wildcard patterns of fault rules: `*` matches any run of characters, the rest itself.

/// Whether `pattern` (with `*` wildcards) matches all of `text`.
pub(crate) fn glob_matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_whole_references() {
        assert!(glob_matches("repo/app:v1", "repo/app:v1"));
        assert!(!glob_matches("repo/app", "repo/app:v1"));
        assert!(glob_matches("*:broken", "registry.local/app:broken"));
        assert!(glob_matches("repo/*:v*", "repo/app:v2"));
        assert!(!glob_matches("repo/*:v*", "other/app:v2"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("a*a", "a"));
    }
}
