//! An estimate of what a caller's requests cost on an on-demand table
//! (pure), so FinOps users see which caller costs most.
//!
//! CloudTrail says which calls were made, not how large the items were, so
//! the estimate charges each call the smallest amount of request units a
//! call of its kind can cost when it touches one small item:
//!
//! - a read call (`reads`: GetItem, Query, Scan, BatchGetItem, PartiQL
//!   `SELECT`, ...) is 1 read request unit (a strongly consistent read of up
//!   to 4 KB); `TransactGetItems` is 2;
//! - a write call (`writes`) is 1 write request unit (up to 1 KB);
//!   `TransactWriteItems` is 2;
//! - stream reads (`GetRecords`, `GetShardIterator`) and management calls
//!   are not charged here: DynamoDB Streams and the control plane are
//!   billed differently.
//!
//! Real cost is higher for items over 4 KB (reads) or 1 KB (writes), for
//! batches, queries and scans that touch several items, and for writes to
//! tables with global secondary indexes; eventually consistent reads cost
//! half. It is an estimate for ranking callers, never a bill.

use serde::{Deserialize, Serialize};

use crate::row::Row;

/// Default price of a million read request units, in US dollars: DynamoDB
/// on-demand, Standard table class, us-east-1 (since November 2024).
pub const DEFAULT_READ_PRICE_PER_MILLION: f64 = 0.125;
/// Default price of a million write request units, in US dollars (same).
pub const DEFAULT_WRITE_PRICE_PER_MILLION: f64 = 0.625;

/// Operations charged twice: transactions use two units per item.
const TRANSACTIONAL_READS: &[&str] = &["TransactGetItems"];
const TRANSACTIONAL_WRITES: &[&str] = &["TransactWriteItems"];
/// Reads of the table's stream, counted in `reads` but not billed as table
/// reads.
const STREAM_READS: &[&str] = &["GetRecords", "GetShardIterator"];

/// On-demand prices, US dollars per million request units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// Per million read request units.
    pub read_per_million: f64,
    /// Per million write request units.
    pub write_per_million: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            read_per_million: DEFAULT_READ_PRICE_PER_MILLION,
            write_per_million: DEFAULT_WRITE_PRICE_PER_MILLION,
        }
    }
}

/// The estimated request units and cost of one row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    /// Estimated read request units.
    pub est_read_units: u64,
    /// Estimated write request units.
    pub est_write_units: u64,
    /// Estimated cost in US dollars at the given prices.
    pub est_cost_usd: f64,
}

/// Estimates a row's request cost (see the module documentation for the
/// model).
pub fn estimate(row: &Row, prices: Prices) -> CostEstimate {
    let count = |names: &[&str]| -> u64 {
        names
            .iter()
            .filter_map(|n| row.operations.get(*n))
            .fold(0u64, |sum, n| sum.saturating_add(*n))
    };
    let reads = row
        .reads
        .saturating_sub(count(STREAM_READS))
        .saturating_add(count(TRANSACTIONAL_READS));
    let writes = row.writes.saturating_add(count(TRANSACTIONAL_WRITES));
    let usd = reads as f64 / 1e6 * prices.read_per_million
        + writes as f64 / 1e6 * prices.write_per_million;
    CostEstimate {
        est_read_units: reads,
        est_write_units: writes,
        // Nano-dollars: enough for one request, without float noise.
        est_cost_usd: (usd * 1e9).round() / 1e9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(reads: u64, writes: u64, ops: &[(&str, u64)]) -> Row {
        Row {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            table: Some("orders".into()),
            day: None,
            caller: "arn:aws:iam::111122223333:role/app".into(),
            app: None,
            caller_type: "AssumedRole".into(),
            person: false,
            calls: reads + writes,
            reads,
            writes,
            errors: 0,
            denied: 0,
            operations: ops.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            indexes: Default::default(),
            user_agents: Default::default(),
            error_codes: Default::default(),
            first_seen: String::new(),
            last_seen: String::new(),
            first_event_id: String::new(),
            source_ips: Vec::new(),
            vpc_endpoints: Vec::new(),
            invoked_by: Vec::new(),
        }
    }

    #[test]
    fn one_unit_per_call_and_two_per_transactional_call() {
        let r = row(
            1_000_000,
            2_000_000,
            &[
                ("GetItem", 900_000),
                ("TransactGetItems", 100_000),
                ("PutItem", 1_500_000),
                ("TransactWriteItems", 500_000),
            ],
        );
        let c = estimate(&r, Prices::default());
        assert_eq!(c.est_read_units, 1_100_000);
        assert_eq!(c.est_write_units, 2_500_000);
        let expected = 1.1 * 0.125 + 2.5 * 0.625;
        assert!((c.est_cost_usd - expected).abs() < 1e-9, "{c:?}");
    }

    #[test]
    fn stream_reads_are_not_table_reads_and_prices_are_configurable() {
        let r = row(10, 0, &[("GetRecords", 8), ("GetShardIterator", 2)]);
        assert_eq!(estimate(&r, Prices::default()).est_read_units, 0);
        let r = row(2_000_000, 0, &[("Query", 2_000_000)]);
        let prices = Prices {
            read_per_million: 0.25,
            write_per_million: 1.25,
        };
        assert!((estimate(&r, prices).est_cost_usd - 0.5).abs() < 1e-9);
    }
}
