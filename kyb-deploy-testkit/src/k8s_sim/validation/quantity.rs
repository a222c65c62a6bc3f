//! Resource quantities (`500m`, `1Gi`, `1e3`) parsed and written back in the API server's
//! canonical form (apimachinery's `resource.Quantity`): a JSON number such as `0.5` becomes
//! `"500m"`, `1.5Gi` stays binary as `"1536Mi"`, `1000` becomes `"1k"`.

use serde_json::Value;

/// The message of apimachinery for a quantity it cannot parse.
pub(crate) const QUANTITY_SYNTAX: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const NANO: i128 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    BinarySi,
    DecimalSi,
    DecimalExponent,
}

/// `text` in canonical form, or why it is not a quantity.
pub(crate) fn canonical(text: &str) -> Result<String, String> {
    let (nano, format) = parse(text.trim()).ok_or_else(|| QUANTITY_SYNTAX.to_owned())?;
    Ok(render(nano, format))
}

/// A quantity's JSON value (a string or a number) in canonical form.
pub(crate) fn canonical_value(value: &Value) -> Result<String, String> {
    text_of(value).map_or_else(|| Err(QUANTITY_SYNTAX.to_owned()), |text| canonical(&text))
}

/// A quantity's JSON value (a string, or a number as YAML sends it) as text.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A quantity's amount in nano-units (for comparisons), when it is one.
pub(crate) fn nano_of(value: &Value) -> Option<i128> {
    parse(text_of(value)?.trim()).map(|(nano, _)| nano)
}

/// The amount in nano-units (rounded up below one nano, as apimachinery does), and the
/// format the suffix asks for.
fn parse(text: &str) -> Option<(i128, Format)> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'+' => (false, &text[1..]),
        b'-' => (true, &text[1..]),
        _ => (false, text),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    // Digits as an integer `mantissa` x 10^`scale`.
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 30 {
        return None;
    }
    let mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let mut scale = -i32::try_from(fraction.len()).ok()?;
    let mut binary_power = 0_u32;
    let format = match suffix {
        "" => Format::DecimalSi,
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            binary_power = 10 * (1 + "KMGTPE".find(&suffix[..1])? as u32);
            Format::BinarySi
        }
        "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => {
            scale += match suffix {
                "n" => -9,
                "u" => -6,
                "m" => -3,
                "k" => 3,
                "M" => 6,
                "G" => 9,
                "T" => 12,
                "P" => 15,
                _ => 18,
            };
            Format::DecimalSi
        }
        exponent if exponent.starts_with(['e', 'E']) => {
            scale += exponent[1..].parse::<i32>().ok()?;
            Format::DecimalExponent
        }
        _ => return None,
    };
    // To nano-units: x 10^(scale + 9), rounding up what is left below a nano.
    let shift = scale + 9;
    let mut nano = if shift >= 0 {
        mantissa.checked_mul(10_i128.checked_pow(u32::try_from(shift).ok()?)?)?
    } else {
        let divisor = 10_i128.checked_pow(u32::try_from(-shift).ok()?)?;
        let rounded_down = mantissa / divisor;
        rounded_down + i128::from(mantissa % divisor != 0)
    };
    nano = nano.checked_mul(2_i128.checked_pow(binary_power)?)?;
    // apimachinery caps quantities at about 2^63 units; beyond, they are refused.
    if nano / NANO > i128::from(i64::MAX) {
        return None;
    }
    Some((if negative { -nano } else { nano }, format))
}

fn render(nano: i128, format: Format) -> String {
    if nano == 0 {
        return "0".to_owned();
    }
    let whole = nano % NANO == 0;
    if format == Format::BinarySi && whole && (nano / NANO).abs() >= 1024 {
        let mut units = nano / NANO;
        let mut power = 0;
        while power < 6 && units % 1024 == 0 {
            units /= 1024;
            power += 1;
        }
        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
        return format!("{units}{suffix}");
    }
    // Decimal: the largest exponent, a multiple of 3 from -9 up, that keeps an integer.
    let mut exponent = -9;
    let mut mantissa = nano;
    while exponent < 18 && mantissa % 1000 == 0 {
        mantissa /= 1000;
        exponent += 3;
    }
    if format == Format::DecimalExponent {
        return if exponent == 0 {
            mantissa.to_string()
        } else {
            format!("{mantissa}e{exponent}")
        };
    }
    let suffix = match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        _ => "E",
    };
    format!("{mantissa}{suffix}")
}

/// Rewrites every quantity of `object` (container resources, `emptyDir.sizeLimit`, the
/// targets of autoscaler metrics) in canonical form; the path and the problem of the first
/// that is not a quantity.
pub(crate) fn canonicalize(object: &mut Value) -> Result<(), (String, String)> {
    walk(object, "")
}

fn walk(value: &mut Value, path: &str) -> Result<(), (String, String)> {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match key.as_str() {
                    // A container's requirements (an RBAC rule's `resources` is a list).
                    "resources" if child.is_object() => {
                        for part in ["requests", "limits"] {
                            if let Some(map) = child.get_mut(part) {
                                quantities_of(map, &format!("{at}.{part}"))?;
                            }
                        }
                    }
                    "sizeLimit" | "averageValue" | "value"
                        if !child.is_null() && is_quantity_field(key, path) =>
                    {
                        *child = Value::String(canonical_value(child).map_err(|e| (at, e))?);
                    }
                    _ => walk(child, &at)?,
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `value` and `averageValue` are quantities in an autoscaler metric's `target` or
/// `current`; `sizeLimit` in an `emptyDir`.
fn is_quantity_field(key: &str, parent: &str) -> bool {
    match key {
        "sizeLimit" => parent.ends_with("emptyDir"),
        _ => parent.ends_with(".target") || parent.ends_with(".current"),
    }
}

fn quantities_of(map: &mut Value, at: &str) -> Result<(), (String, String)> {
    if let Some(map) = map.as_object_mut() {
        for (name, quantity) in map.iter_mut() {
            let canonical = canonical_value(quantity).map_err(|e| (format!("{at}.{name}"), e))?;
            *quantity = Value::String(canonical);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_forms_match_apimachinery() {
        for (given, canonical_form) in [
            ("0.5", "500m"),
            ("500m", "500m"),
            ("1", "1"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("1073741824", "1073741824"),
            ("1Gi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("1024Mi", "1Gi"),
            ("512", "512"),
            ("100Ki", "100Ki"),
            ("0.5Ki", "512"),
            ("1e3", "1e3"),
            ("1.5e3", "1500"),
            ("2E6", "2e6"),
            ("0.1m", "100u"),
            ("0.0000000001", "1n"),
            ("-1.5", "-1500m"),
            ("0", "0"),
            ("0Gi", "0"),
            ("2M", "2M"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("123Mi", "123Mi"),
        ] {
            assert_eq!(canonical(given).as_deref(), Ok(canonical_form), "{given}");
        }
    }

    #[test]
    fn other_fields_named_like_quantities_are_left_alone() {
        let role = json!({"rules": [{"resources": ["pods"], "verbs": ["get"]}]});
        let mut walked = role.clone();
        canonicalize(&mut walked).unwrap();
        assert_eq!(walked, role);
        let mut container = json!({"resources": {"claims": [{"name": "gpu"}]}});
        canonicalize(&mut container).unwrap();
        assert_eq!(
            container,
            json!({"resources": {"claims": [{"name": "gpu"}]}})
        );
    }

    #[test]
    fn non_quantities_are_refused() {
        for bad in [
            "",
            "abc",
            "1..2",
            "1Gb",
            "1 Gi",
            "Gi",
            "1e",
            "1x",
            "99999999999999999999999",
        ] {
            assert_eq!(canonical(bad), Err(QUANTITY_SYNTAX.to_owned()), "{bad}");
        }
    }

    #[test]
    fn numbers_in_an_object_become_canonical_strings() {
        let mut pod = json!({"spec": {"containers": [{"resources": {
            "requests": {"cpu": 0.5, "memory": "1.5Gi"},
            "limits": {"cpu": 1, "memory": 1073741824}
        }}], "volumes": [{"emptyDir": {"sizeLimit": "1024Mi"}}]}});
        canonicalize(&mut pod).unwrap();
        let resources = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(resources["requests"]["cpu"], "500m");
        assert_eq!(resources["requests"]["memory"], "1536Mi");
        assert_eq!(resources["limits"]["cpu"], "1");
        assert_eq!(resources["limits"]["memory"], "1073741824");
        assert_eq!(pod["spec"]["volumes"][0]["emptyDir"]["sizeLimit"], "1Gi");

        let mut bad = json!({"spec": {"containers": [{"resources": {"limits": {"cpu": "lots"}}}]}});
        let (path, _) = canonicalize(&mut bad).unwrap_err();
        assert_eq!(path, "spec.containers[0].resources.limits.cpu");
    }
}
