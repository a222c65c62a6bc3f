//! `POST /v1/classify`: request validation and the deterministic classification rules.

use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use serde_json::Value;

use super::handlers::ApiError;

/// The longest accepted business name, in characters.
const MAX_NAME_CHARS: usize = 200;

const EXAMPLE: &str = r#"send a JSON object such as {"business_name": "Test Corp"}"#;

/// Industries by priority: the first whose keyword occurs in the lowercased name wins.
const INDUSTRIES: [Industry; 3] = [
    Industry {
        name: "crypto_assets",
        keywords: &["crypto", "coin", "token", "blockchain"],
        base_risk: 75,
    },
    Industry {
        name: "financial_services",
        keywords: &["bank", "capital", "financ", "invest", "credit", "lending"],
        base_risk: 45,
    },
    Industry {
        name: "technology",
        keywords: &["tech", "software", "labs", "cloud", "systems"],
        base_risk: 10,
    },
];

/// Industry and base risk when no keyword matches.
const GENERAL: (&str, i32) = ("general_business", 25);

/// Whole words that mark a registered legal entity.
const LEGAL_SUFFIXES: [&str; 9] = [
    "corp",
    "corporation",
    "inc",
    "incorporated",
    "llc",
    "ltd",
    "limited",
    "plc",
    "gmbh",
];

/// Risk added for each further industry the name matches.
const MIXED_PROFILE_RISK: i32 = 10;
/// Risk added when no legal suffix is present.
const NO_SUFFIX_RISK: i32 = 10;
/// Risk removed when a legal suffix is present.
const SUFFIX_RISK: i32 = -5;
/// The name fingerprint adds 0 to this much risk.
const MAX_JITTER: u64 = 10;

struct Industry {
    name: &'static str,
    keywords: &'static [&'static str],
    base_risk: i32,
}

/// The answer of `POST /v1/classify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Classification {
    business_name: String,
    industry: &'static str,
    risk_score: u8,
    risk_level: &'static str,
    reasons: Vec<String>,
}

/// Validates the request and returns the business name, trimmed.
pub(super) fn business_name(headers: &HeaderMap, body: &[u8]) -> Result<String, ApiError> {
    if body.trim_ascii().is_empty() {
        return Err(ApiError::bad_request(
            "missing_body",
            format!("the request has no body; {EXAMPLE}"),
        ));
    }
    if !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON; set the header Content-Type: application/json".to_owned(),
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON ({error}); {EXAMPLE}"),
        )
    })?;
    let Value::Object(mut fields) = value else {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("the body must be a JSON object; {EXAMPLE}"),
        ));
    };
    if let Some(unknown) = fields.keys().find(|key| *key != "business_name") {
        return Err(ApiError::bad_request(
            "unknown_field",
            format!(
                "unknown field {unknown:?}; remove it, the only accepted field is \"business_name\""
            ),
        ));
    }
    let name = match fields.remove("business_name") {
        None => {
            return Err(ApiError::bad_request(
                "missing_field",
                format!("the field \"business_name\" is missing; {EXAMPLE}"),
            ));
        }
        Some(Value::String(name)) => name,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_type",
                format!("the field \"business_name\" must be a string; {EXAMPLE}"),
            ));
        }
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "empty_business_name",
            "the field \"business_name\" is empty; set it to the business's name".to_owned(),
        ));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(ApiError::bad_request(
            "business_name_too_long",
            format!(
                "the field \"business_name\" has {chars} characters; shorten it to at most {MAX_NAME_CHARS}"
            ),
        ));
    }
    Ok(name.to_owned())
}

/// Whether the content type is `application/json` or `application/*+json`.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Classifies `name` by the keyword rules; the same name always gets the same answer.
pub(super) fn classify(name: &str) -> Classification {
    let lower = name.to_lowercase();
    let mut reasons = Vec::new();

    let mut matches = INDUSTRIES.iter().filter_map(|industry| {
        let keyword = industry.keywords.iter().find(|k| lower.contains(**k))?;
        Some((industry, *keyword))
    });
    let (industry, mut risk) = match matches.next() {
        Some((industry, keyword)) => {
            reasons.push(format!(
                "name contains {keyword:?}: {} (base risk {})",
                industry.name, industry.base_risk
            ));
            (industry.name, industry.base_risk)
        }
        None => {
            reasons.push(format!(
                "no industry keyword matched: {} (base risk {})",
                GENERAL.0, GENERAL.1
            ));
            GENERAL
        }
    };
    for (other, keyword) in matches {
        risk += MIXED_PROFILE_RISK;
        reasons.push(format!(
            "name also contains {keyword:?} of {}: mixed profile {MIXED_PROFILE_RISK:+}",
            other.name
        ));
    }

    let suffix = lower
        .split(|c: char| !c.is_alphanumeric())
        .find(|word| LEGAL_SUFFIXES.contains(word));
    match suffix {
        Some(suffix) => {
            risk += SUFFIX_RISK;
            reasons.push(format!(
                "legal-entity suffix {suffix:?} names a registered entity: {SUFFIX_RISK:+}"
            ));
        }
        None => {
            risk += NO_SUFFIX_RISK;
            reasons.push(format!(
                "no legal-entity suffix (Inc, Corp, LLC, Ltd, ...), entity type unverified: {NO_SUFFIX_RISK:+}"
            ));
        }
    }

    let jitter = i32::try_from(fnv1a(lower.as_bytes()) % (MAX_JITTER + 1)).unwrap_or(0);
    risk += jitter;
    reasons.push(format!("name fingerprint: {jitter:+}"));

    let risk_score = u8::try_from(risk.clamp(0, 100)).unwrap_or(100);
    Classification {
        business_name: name.to_owned(),
        industry,
        risk_score,
        risk_level: match risk_score {
            0..=33 => "low",
            34..=66 => "medium",
            _ => "high",
        },
        reasons,
    }
}

/// 64-bit FNV-1a: stable across Rust versions and platforms, unlike `std`'s hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn test_corp_is_a_low_risk_general_business() {
        let answer = classify("Test Corp");
        assert_eq!(answer.industry, "general_business");
        assert_eq!(answer.risk_level, "low");
        assert_eq!(
            answer.risk_score,
            20 + u8::try_from(fnv1a(b"test corp") % 11).unwrap()
        );
        assert_eq!(answer, classify("Test Corp"));
    }

    #[test]
    fn keywords_pick_the_industry() {
        for (name, industry, level) in [
            ("Moon Coin Exchange", "crypto_assets", "high"),
            ("CryptoBank Inc.", "crypto_assets", "high"),
            ("First National Bank", "financial_services", "medium"),
            ("Acme Capital LLC", "financial_services", "medium"),
            ("Blue Software Ltd", "technology", "low"),
            ("Rocket Labs", "technology", "low"),
            ("Corner Bakery", "general_business", "medium"),
        ] {
            let answer = classify(name);
            assert_eq!(
                (answer.industry, answer.risk_level),
                (industry, level),
                "{name}"
            );
            assert!(answer.risk_score <= 100);
            assert!(!answer.reasons.is_empty());
        }
    }

    #[test]
    fn mixed_profiles_and_suffixes_show_in_the_reasons() {
        let answer = classify("CryptoBank Inc.");
        assert!(
            answer
                .reasons
                .iter()
                .any(|r| r.contains("financial_services"))
        );
        assert!(answer.reasons.iter().any(|r| r.contains("\"inc\"")));
    }
}
