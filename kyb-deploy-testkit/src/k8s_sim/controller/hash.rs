//! The pod-template hash that names ReplicaSets, template comparison, and stable
//! pseudo-random identifiers (container IDs, image digests).

use serde_json::Value;

use super::json::int;

/// The label that tells the ReplicaSets of one Deployment apart.
pub(super) const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// The alphabet of `rand.SafeEncodeString`: no vowels, no confusable characters.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The hash upstream's `controller.ComputeHash` gives a pod template: FNV-32a over the
/// template, then the collision count (8 little-endian bytes) when there is one, printed in
/// decimal and passed through `SafeEncodeString`.
///
/// Upstream hashes Go's `%#v` printing of the template struct, which cannot be reproduced
/// from JSON; this hashes the template's canonical JSON (sorted keys, no whitespace)
/// instead. The hashes therefore differ from a real cluster's, but have the same shape,
/// alphabet and stability: equal templates always give equal hashes.
pub(super) fn pod_template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut text = String::new();
    canonical(template, &mut text);
    let mut hash = fnv32a(FNV32_OFFSET, text.as_bytes());
    if let Some(count) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(count as u32).to_le_bytes());
        hash = fnv32a(hash, &bytes);
    }
    safe_encode(&hash.to_string())
}

const FNV32_OFFSET: u32 = 0x811c_9dc5;

fn fnv32a(mut hash: u32, bytes: &[u8]) -> u32 {
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// `rand.SafeEncodeString`: every byte mapped into the safe alphabet.
fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// Writes `v` as JSON with object keys sorted, whatever the map type's order.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Upstream's `EqualIgnoreHash`: whether two pod templates are semantically equal once the
/// `pod-template-hash` label is taken out of both. Like `apiequality.Semantic.DeepEqual`,
/// empty and absent maps and lists compare equal (so do nulls and absent fields, and `2`
/// and `2.0`).
pub(super) fn equal_ignore_hash(a: &Value, b: &Value) -> bool {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(labels) = t
            .get_mut("metadata")
            .and_then(|m| m.get_mut("labels"))
            .and_then(Value::as_object_mut)
        {
            labels.remove(POD_TEMPLATE_HASH);
        }
        normalize(t)
    };
    strip(a) == strip(b)
}

/// Drops nulls, empty maps and empty lists; integral floats become integers.
fn normalize(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, normalize(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        Value::Number(n) if n.is_f64() => {
            int(&Value::Number(n.clone())).map_or(Value::Number(n), Value::from)
        }
        other => other,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// `len` lowercase hex digits derived from `seed`: stable, and different for every seed.
pub(super) fn hex_id(seed: &str, len: usize) -> String {
    let mut out = String::with_capacity(len + 8);
    let mut round = 0u32;
    while out.len() < len {
        let h = fnv32a(fnv32a(FNV32_OFFSET, seed.as_bytes()), &round.to_le_bytes());
        out.push_str(&format!("{h:08x}"));
        round += 1;
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn hashes_are_safe_encoded_and_stable() {
        let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        let h = pod_template_hash(&t, None);
        assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)), "{h}");
        assert!((8..=10).contains(&h.len()), "{h}");
        assert_eq!(h, pod_template_hash(&t.clone(), None));
        assert_ne!(h, pod_template_hash(&t, Some(1)));
        // Key order does not matter.
        let reordered: Value = serde_json::from_str(
            r#"{"spec": {"containers": [{"image": "x:1", "name": "a"}]}, "metadata": {"labels": {"app": "web"}}}"#,
        )
        .unwrap();
        assert_eq!(h, pod_template_hash(&reordered, None));
    }

    #[test]
    fn digits_map_like_upstream() {
        // SafeEncodeString maps '0'..'9' to "456789bcdf".
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
        assert_eq!(fnv32a(FNV32_OFFSET, b"a"), 0xe40c_292c);
    }

    #[test]
    fn templates_compare_without_the_hash_label() {
        let a = json!({"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}}, "spec": {"x": 1.0, "y": {}}});
        let b = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"x": 1}});
        assert!(equal_ignore_hash(&a, &b));
        let c = json!({"metadata": {"labels": {"app": "db"}}, "spec": {"x": 1}});
        assert!(!equal_ignore_hash(&a, &c));
        assert_eq!(hex_id("a", 64).len(), 64);
        assert_ne!(hex_id("a", 16), hex_id("b", 16));
    }
}
