//! Friendly application names for callers: a small list of rules, each an
//! application name and the caller patterns that belong to it, so that rows
//! say `checkout` beside `arn:aws:iam::111122223333:role/checkout-prod-api`.
//!
//! The rules are JSON, first match wins:
//!
//! ```json
//! [
//!   {"app": "checkout", "callers": ["arn:aws:iam::*:role/checkout-*"]},
//!   {"app": "data team (people)", "callers": ["arn:aws:sts::*:assumed-role/AWSReservedSSO_Data*/*"]}
//! ]
//! ```

use globset::GlobSet;
use serde::Deserialize;

use crate::Error;

/// Caller → application name rules.
#[derive(Debug, Clone, Default)]
pub struct AppNames {
    rules: Vec<(String, GlobSet)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    app: String,
    callers: Vec<String>,
}

impl AppNames {
    /// Parses the JSON rules; `origin` names the file in errors.
    pub fn from_json(origin: &str, text: &str) -> Result<Self, Error> {
        let rules: Vec<Rule> = serde_json::from_str(text).map_err(|e| {
            Error::shape(format!(
                "{origin}: application names must be a JSON list of {{\"app\": NAME, \"callers\": [GLOB, ...]}} ({e})"
            ))
        })?;
        let mut out = Vec::with_capacity(rules.len());
        for (i, rule) in rules.into_iter().enumerate() {
            let set = crate::globs::glob_set(&rule.callers, "caller pattern")
                .map_err(|e| Error::shape(format!("{origin}: rule {i} (`{}`): {e}", rule.app)))?
                .unwrap_or_default();
            out.push((rule.app, set));
        }
        Ok(AppNames { rules: out })
    }

    /// The application a caller belongs to, if a rule says so.
    pub fn name_of(&self, caller: &str) -> Option<&str> {
        self.rules
            .iter()
            .find(|(_, set)| set.is_match(caller))
            .map(|(app, _)| app.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_names_the_caller() {
        let names = AppNames::from_json(
            "apps.json",
            r#"[{"app":"checkout","callers":["arn:aws:iam::*:role/checkout-*"]},
                {"app":"everything","callers":["*"]}]"#,
        )
        .unwrap();
        assert_eq!(
            names.name_of("arn:aws:iam::1:role/checkout-api"),
            Some("checkout")
        );
        assert_eq!(
            names.name_of("service:glue.amazonaws.com"),
            Some("everything")
        );
        assert_eq!(AppNames::default().name_of("x"), None);
    }

    #[test]
    fn bad_rules_name_the_file() {
        let err = AppNames::from_json("apps.json", r#"{"app":"x"}"#).unwrap_err();
        assert!(err.to_string().starts_with("apps.json: "));
        let err =
            AppNames::from_json("apps.json", r#"[{"app":"x","callers":["[a"]}]"#).unwrap_err();
        assert!(err.to_string().contains("rule 0 (`x`)"));
    }
}
