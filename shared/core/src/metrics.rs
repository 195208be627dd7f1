//! The per-invocation reconciliation: one log line for people and one
//! CloudWatch Embedded Metric Format (EMF) record for dashboards and alarms.

use serde_json::{json, Map, Value};

use crate::reconcile::Reconciliation;

/// The CloudWatch namespace of ddb-audit's metrics.
pub const NAMESPACE: &str = "ddb-audit";

/// What one invocation did, beyond the record counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// Record counters of everything read.
    pub counts: Reconciliation,
    /// Inputs (objects or log batches) read.
    pub inputs: u64,
    /// Objects announced but skipped (digest, folder, ...), by reason.
    pub objects_skipped: u64,
    /// Notification messages that announce no trail file (an SNS message
    /// from another publisher on the topic), acknowledged.
    pub messages_skipped: u64,
    /// Inputs recorded as rejects.
    pub rejects: u64,
    /// Distinct rollup rows (lifetime and daily) written.
    pub rollup_keys: u64,
    /// Chunks applied now.
    pub chunks_applied: u64,
    /// Chunks found already applied (a redelivery or a retry).
    pub chunks_already_applied: u64,
    /// Messages reported as failed for a retry.
    pub failures: u64,
}

impl Invocation {
    /// Adds another part of the invocation.
    pub fn merge(&mut self, other: &Invocation) {
        self.counts.merge(&other.counts);
        self.inputs += other.inputs;
        self.objects_skipped += other.objects_skipped;
        self.messages_skipped += other.messages_skipped;
        self.rejects += other.rejects;
        self.rollup_keys += other.rollup_keys;
        self.chunks_applied += other.chunks_applied;
        self.chunks_already_applied += other.chunks_already_applied;
        self.failures += other.failures;
    }

    /// The reconciliation line.
    pub fn summary(&self) -> String {
        format!(
            "{}; inputs {}, objects skipped {}, messages skipped {}, rejects {}, rollup keys {}, chunks applied {}, already applied {}, failures {}",
            self.counts,
            self.inputs,
            self.objects_skipped,
            self.messages_skipped,
            self.rejects,
            self.rollup_keys,
            self.chunks_applied,
            self.chunks_already_applied,
            self.failures
        )
    }

    /// The EMF record, one JSON line, dimensioned by function name.
    pub fn emf(&self, function: &str, timestamp_ms: i64) -> String {
        let mut metrics: Vec<(String, u64)> = vec![
            ("RecordsIn".into(), self.counts.records_in),
            ("Attributed".into(), self.counts.attributed),
            ("Skipped".into(), self.counts.skipped_total()),
            ("Malformed".into(), self.counts.malformed_total()),
            ("Inputs".into(), self.inputs),
            ("ObjectsSkipped".into(), self.objects_skipped),
            ("MessagesSkipped".into(), self.messages_skipped),
            ("Rejects".into(), self.rejects),
            ("RollupKeys".into(), self.rollup_keys),
            ("ChunksApplied".into(), self.chunks_applied),
            ("ChunksAlreadyApplied".into(), self.chunks_already_applied),
            ("Failures".into(), self.failures),
        ];
        for (reason, n) in &self.counts.skipped {
            metrics.push((format!("Skipped_{reason}"), *n));
        }
        for (reason, n) in &self.counts.malformed {
            metrics.push((format!("Malformed_{reason}"), *n));
        }
        let definitions: Vec<Value> = metrics
            .iter()
            .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
            .collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function"]],
                    "Metrics": definitions,
                }],
            }),
        );
        root.insert("Function".into(), Value::from(function));
        for (name, n) in metrics {
            root.insert(name, Value::from(n));
        }
        Value::Object(root).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_declares_every_metric_it_carries() {
        let mut inv = Invocation {
            inputs: 2,
            rejects: 1,
            ..Invocation::default()
        };
        inv.counts.records_in = 5;
        inv.counts.attributed = 3;
        inv.counts.skipped.insert("not_dynamodb", 2);
        let line = inv.emf("s3-ingest", 1_700_000_000_000);
        let v: Value = serde_json::from_str(&line).unwrap();
        let declared = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        for d in declared {
            let name = d["Name"].as_str().unwrap();
            assert!(v[name].is_u64(), "{name} declared but not present");
        }
        assert_eq!(v["Skipped_not_dynamodb"], 2);
        assert_eq!(v["Function"], "s3-ingest");
        assert!(inv
            .summary()
            .starts_with("records in 5 = attributed 3 + skipped 2"));
    }
}
