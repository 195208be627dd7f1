//! Configuration of the Lambda functions, from environment variables with
//! safe defaults. Every variable is listed in the README's configuration
//! table; this module is the one place that reads them.

use crate::attribute::Rules;
use crate::caller::HumanRoles;
use crate::decode::DEFAULT_MAX_DECOMPRESSED;
use crate::input::{Limits, MAX_RECORD_BYTES};
use crate::summary::Retention;
use crate::Error;

/// Default days a daily rollup is kept after its day ends.
pub const DEFAULT_DAILY_RETENTION_DAYS: u32 = 400;
/// Default days a ledger item is kept: 0, for ever. A ledger item is what
/// makes a rerun of a backfill over old files count nothing, so it must live
/// at least as long as any file a user may backfill; an expiry shorter than
/// the trail's own retention would let such a rerun count again.
pub const DEFAULT_LEDGER_TTL_DAYS: u32 = 0;
/// Default days a reject item is kept.
pub const DEFAULT_REJECT_TTL_DAYS: u32 = 90;

/// Settings read through a lookup function: trimmed, and blank means unset.
struct Vars<F>(F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str, what: &str) -> Result<String, Error> {
        self.get(name)
            .ok_or_else(|| Error::Config(format!("{name} is not set: {what}")))
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, Error> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<T>()
                .map_err(|_| Error::Config(format!("{name} must be a whole number, not `{v}`"))),
        }
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn flag(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }
}

/// Everything the ingest functions are configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `SUMMARY_TABLE`: the summary table's name (required).
    pub summary_table: String,
    /// `DAILY_RETENTION_DAYS`.
    pub retention: Retention,
    /// `LEDGER_TTL_DAYS` (0: ledger items never expire).
    pub ledger_ttl_days: u32,
    /// `REJECT_TTL_DAYS`.
    pub reject_ttl_days: u32,
    /// `MAX_DECOMPRESSED_BYTES`.
    pub limits: Limits,
    /// `HUMAN_ROLE_PATTERNS`, `INCLUDE_TABLES`, `EXCLUDE_TABLES`.
    pub rules: Rules,
    /// `TRAIL_KEY_PREFIX`: where the trail's log files are in the bucket
    /// (`AWSLogs/`, or `PREFIX/AWSLogs/`). An announced key outside it is a
    /// counted skip, not a read. Unset: every key is read.
    pub trail_key_prefix: Option<String>,
    /// `AWS_S3_FORCE_PATH_STYLE`, or implied by `AWS_ENDPOINT_URL` (local servers
    /// have no per-bucket host names).
    pub s3_path_style: bool,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `var`, so tests need not touch the
    /// process environment.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let vars = Vars(var);
        let summary_table = vars.required("SUMMARY_TABLE", "name the summary table")?;
        let max_decompressed = vars.number("MAX_DECOMPRESSED_BYTES", DEFAULT_MAX_DECOMPRESSED)?;
        if max_decompressed == 0 {
            return Err(Error::Config(
                "MAX_DECOMPRESSED_BYTES must be above 0".into(),
            ));
        }
        let rules = Rules {
            human_roles: HumanRoles::new(vars.list("HUMAN_ROLE_PATTERNS"))
                .map_err(|e| Error::Config(format!("HUMAN_ROLE_PATTERNS: {e}")))?,
            include_tables: Rules::table_patterns(vars.list("INCLUDE_TABLES"))
                .map_err(|e| Error::Config(format!("INCLUDE_TABLES: {e}")))?,
            exclude_tables: Rules::table_patterns(vars.list("EXCLUDE_TABLES"))
                .map_err(|e| Error::Config(format!("EXCLUDE_TABLES: {e}")))?,
        };
        Ok(Config {
            summary_table,
            retention: Retention {
                daily_days: vars.number("DAILY_RETENTION_DAYS", DEFAULT_DAILY_RETENTION_DAYS)?,
            },
            ledger_ttl_days: vars.number("LEDGER_TTL_DAYS", DEFAULT_LEDGER_TTL_DAYS)?,
            reject_ttl_days: vars.number("REJECT_TTL_DAYS", DEFAULT_REJECT_TTL_DAYS)?,
            limits: Limits {
                max_decompressed,
                max_record_bytes: MAX_RECORD_BYTES,
            },
            rules,
            trail_key_prefix: vars.get("TRAIL_KEY_PREFIX"),
            s3_path_style: vars.flag("AWS_S3_FORCE_PATH_STYLE")
                || vars.get("AWS_ENDPOINT_URL").is_some(),
        })
    }
}

/// Default hours after the notifier's first change during which callers are
/// recorded but not announced.
pub const DEFAULT_NOTIFY_LEARNING_HOURS: u32 = 24;
/// Default single notices per hour before the rest are folded into digests.
pub const DEFAULT_NOTIFY_MAX_PER_HOUR: u32 = 20;

/// Everything the `notifier` function is configured with.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// `SUMMARY_TABLE`: where notices are recorded (required).
    pub summary_table: String,
    /// `TOPIC_ARN`: the SNS topic notices are published to (required).
    pub topic_arn: String,
    /// `NOTIFY_LEARNING_HOURS` (0: no learning period).
    pub learning_hours: u32,
    /// `NOTIFY_MAX_PER_HOUR` (0: no cap).
    pub max_per_hour: u32,
    /// `NOTIFY_IGNORE`.
    pub ignore: crate::notify::IgnoreRules,
}

impl NotifyConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let vars = Vars(var);
        Ok(NotifyConfig {
            summary_table: vars.required("SUMMARY_TABLE", "name the summary table")?,
            topic_arn: vars.required("TOPIC_ARN", "give the ARN of the SNS topic for notices")?,
            learning_hours: vars.number("NOTIFY_LEARNING_HOURS", DEFAULT_NOTIFY_LEARNING_HOURS)?,
            max_per_hour: vars.number("NOTIFY_MAX_PER_HOUR", DEFAULT_NOTIFY_MAX_PER_HOUR)?,
            ignore: crate::notify::IgnoreRules::parse(
                &vars.get("NOTIFY_IGNORE").unwrap_or_default(),
            )?,
        })
    }
}

#[cfg(test)]
mod notify_tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<NotifyConfig, Error> {
        NotifyConfig::from_vars(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_notifier_needs_a_table_and_a_topic_and_defaults_the_rest() {
        let c = config(&[
            ("SUMMARY_TABLE", "t"),
            ("TOPIC_ARN", "arn:aws:sns:us-east-1:1:n"),
        ])
        .unwrap();
        assert_eq!(c.learning_hours, DEFAULT_NOTIFY_LEARNING_HOURS);
        assert_eq!(c.max_per_hour, DEFAULT_NOTIFY_MAX_PER_HOUR);
        assert!(c.ignore.is_empty());
        let err = config(&[("SUMMARY_TABLE", "t")]).unwrap_err().to_string();
        assert!(err.contains("TOPIC_ARN"), "{err}");
        let err = config(&[
            ("SUMMARY_TABLE", "t"),
            ("TOPIC_ARN", "x"),
            ("NOTIFY_MAX_PER_HOUR", "lots"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("NOTIFY_MAX_PER_HOUR"), "{err}");
        let err = config(&[
            ("SUMMARY_TABLE", "t"),
            ("TOPIC_ARN", "x"),
            ("NOTIFY_IGNORE", "orders"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("NOTIFY_IGNORE"), "{err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_only_the_table_name() {
        let c = config(&[("SUMMARY_TABLE", "ddb-audit")]).unwrap();
        assert_eq!(c.summary_table, "ddb-audit");
        assert_eq!(c.retention.daily_days, DEFAULT_DAILY_RETENTION_DAYS);
        assert_eq!(c.ledger_ttl_days, DEFAULT_LEDGER_TTL_DAYS);
        assert_eq!(c.limits.max_decompressed, DEFAULT_MAX_DECOMPRESSED);
        assert!(!c.s3_path_style);
        assert!(config(&[])
            .unwrap_err()
            .to_string()
            .contains("SUMMARY_TABLE"));
    }

    #[test]
    fn values_are_read_and_bad_ones_are_named() {
        let c = config(&[
            ("SUMMARY_TABLE", "t"),
            ("DAILY_RETENTION_DAYS", "30"),
            ("MAX_DECOMPRESSED_BYTES", "1000"),
            (
                "HUMAN_ROLE_PATTERNS",
                "Admin*, arn:aws:iam::*:role/people/*",
            ),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ])
        .unwrap();
        assert_eq!(c.retention.daily_days, 30);
        assert_eq!(c.limits.max_decompressed, 1000);
        assert!(c.s3_path_style);
        let err = config(&[("SUMMARY_TABLE", "t"), ("LEDGER_TTL_DAYS", "soon")]).unwrap_err();
        assert!(err.to_string().contains("LEDGER_TTL_DAYS"), "{err}");
        let err = config(&[("SUMMARY_TABLE", "t"), ("INCLUDE_TABLES", "[x")]).unwrap_err();
        assert!(err.to_string().contains("INCLUDE_TABLES"), "{err}");
    }
}
