//! Folding attributed calls into rollups: one per (table account, region,
//! table, caller), for its lifetime and per UTC day.
//!
//! Folding is associative and commutative: folding two halves of a batch and
//! merging them gives the same rollups as folding the whole, which is what
//! lets inputs be processed in any order or in parallel.

use std::hash::{Hash, Hasher};

use compact_str::CompactString;
use hashbrown::{Equivalent, HashMap};

use crate::attribute::Call;
use crate::caller::CallerType;
use crate::reconcile::{Reconciliation, RecordProblem};
use crate::tally::{Smallest, Tally};

/// How many distinct source IPs, VPC endpoints and services a rollup keeps
/// (the smallest ones, so that merging stays exact).
pub const MAX_SOURCES: usize = 8;

/// The source IPs, VPC endpoints or services of a rollup.
pub type SourceSet = Smallest<MAX_SOURCES>;

/// How many record problems a batch keeps in full; the rest are only counted.
pub const MAX_PROBLEMS: usize = 100;

/// The identity of a rollup row. Accounts, regions and most table names fit
/// in a `CompactString` without an allocation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RollupKey {
    /// The account that owns the table (for account-level calls, the account called).
    pub account: CompactString,
    /// The table's region.
    pub region: CompactString,
    /// The table; `None` for calls that name no table (`ListTables`).
    pub table: Option<CompactString>,
    /// The caller string.
    pub caller: CompactString,
}

impl RollupKey {
    /// The key of `caller`'s row on `table` (`None`: the account-level row).
    pub fn new(account: &str, region: &str, table: Option<&str>, caller: &str) -> Self {
        RollupKey {
            account: account.into(),
            region: region.into(),
            table: table.map(CompactString::new),
            caller: caller.into(),
        }
    }
}

/// A borrowed [`RollupKey`], for looking up rows without allocating.
#[derive(Debug, Clone, Copy)]
struct KeyRef<'a> {
    account: &'a str,
    region: &'a str,
    table: Option<&'a str>,
    caller: &'a str,
}

fn hash_key<H: Hasher>(
    state: &mut H,
    account: &str,
    region: &str,
    table: Option<&str>,
    caller: &str,
) {
    account.hash(state);
    region.hash(state);
    match table {
        Some(t) => {
            1u8.hash(state);
            t.hash(state);
        }
        None => 0u8.hash(state),
    }
    caller.hash(state);
}

impl Hash for RollupKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_key(
            state,
            &self.account,
            &self.region,
            self.table.as_deref(),
            &self.caller,
        );
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_key(state, self.account, self.region, self.table, self.caller);
    }
}

impl Equivalent<RollupKey> for KeyRef<'_> {
    fn equivalent(&self, key: &RollupKey) -> bool {
        self.account == key.account
            && self.region == key.region
            && self.table == key.table.as_deref()
            && self.caller == key.caller
    }
}

impl KeyRef<'_> {
    fn to_owned_key(self) -> RollupKey {
        RollupKey::new(self.account, self.region, self.table, self.caller)
    }
}

/// A daily rollup's identity: the row and the UTC day (days since 1970-01-01).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DailyKey {
    /// The row.
    pub key: RollupKey,
    /// The UTC day, as days since the Unix epoch.
    pub day: i64,
}

#[derive(Debug, Clone, Copy)]
struct DailyKeyRef<'a> {
    key: KeyRef<'a>,
    day: i64,
}

impl Hash for DailyKeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
        self.day.hash(state);
    }
}

impl Equivalent<DailyKey> for DailyKeyRef<'_> {
    fn equivalent(&self, key: &DailyKey) -> bool {
        self.day == key.day && self.key.equivalent(&key.key)
    }
}

/// The counters and facts kept for one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    /// The caller's identity type.
    pub caller_type: CallerType,
    /// The caller is a person.
    pub person: bool,
    /// Calls (a call touching two tables counts once on each).
    pub calls: u64,
    /// Read calls (attempted; failed ones count here and in `errors`).
    pub reads: u64,
    /// Write calls (attempted).
    pub writes: u64,
    /// Calls with an `errorCode`.
    pub errors: u64,
    /// Calls refused with an `AccessDenied*` error.
    pub denied: u64,
    /// `eventName` → calls.
    pub operations: Tally,
    /// Index name → calls.
    pub indexes: Tally,
    /// User-agent family → calls.
    pub user_agents: Tally,
    /// `errorCode` → calls.
    pub error_codes: Tally,
    /// Earliest `eventTime`, Unix seconds.
    pub first_seen: i64,
    /// Latest `eventTime`, Unix seconds.
    pub last_seen: i64,
    /// `eventID` of the earliest call (ties: the smallest id).
    pub first_event_id: String,
    /// Source IP addresses (or service names), the smallest [`MAX_SOURCES`].
    pub source_ips: SourceSet,
    /// VPC endpoint ids, the smallest [`MAX_SOURCES`].
    pub vpc_endpoints: SourceSet,
    /// `invokedBy` services, the smallest [`MAX_SOURCES`].
    pub invoked_by: SourceSet,
}

impl Rollup {
    fn new(call: &Call<'_>) -> Self {
        Rollup {
            caller_type: call.caller.kind,
            person: call.caller.person,
            calls: 0,
            reads: 0,
            writes: 0,
            errors: 0,
            denied: 0,
            operations: Tally::new(),
            indexes: Tally::new(),
            user_agents: Tally::new(),
            error_codes: Tally::new(),
            first_seen: call.time,
            last_seen: call.time,
            first_event_id: call.event_id.to_owned(),
            source_ips: SourceSet::new(),
            vpc_endpoints: SourceSet::new(),
            invoked_by: SourceSet::new(),
        }
    }

    fn add(&mut self, call: &Call<'_>, indexes: &[&str], read: bool, write: bool) {
        self.calls += 1;
        self.reads += u64::from(read);
        self.writes += u64::from(write);
        self.operations.add(call.operation, 1);
        for index in indexes {
            self.indexes.add(index, 1);
        }
        self.user_agents.add(&call.user_agent, 1);
        if let Some(code) = call.error_code {
            self.errors += 1;
            self.denied += u64::from(call.denied());
            self.error_codes.add(code, 1);
        }
        if (call.time, call.event_id) < (self.first_seen, self.first_event_id.as_str()) {
            self.first_event_id = call.event_id.to_owned();
        }
        self.first_seen = self.first_seen.min(call.time);
        self.last_seen = self.last_seen.max(call.time);
        // A person is a person in any of their calls (console sessions are
        // marked per call).
        self.person |= call.caller.person;
        // As in `merge`, so that the row does not depend on record order.
        self.caller_type = self.caller_type.min(call.caller.kind);
        for (set, value) in [
            (&mut self.source_ips, call.source_ip),
            (&mut self.vpc_endpoints, call.vpc_endpoint),
            (&mut self.invoked_by, call.invoked_by),
        ] {
            if let Some(value) = value {
                set.offer(value);
            }
        }
    }

    /// Merges another rollup of the same row.
    pub fn merge(&mut self, other: Rollup) {
        self.caller_type = self.caller_type.min(other.caller_type);
        self.person |= other.person;
        self.calls += other.calls;
        self.reads += other.reads;
        self.writes += other.writes;
        self.errors += other.errors;
        self.denied += other.denied;
        for (mine, theirs) in [
            (&mut self.operations, other.operations),
            (&mut self.indexes, other.indexes),
            (&mut self.user_agents, other.user_agents),
            (&mut self.error_codes, other.error_codes),
        ] {
            mine.merge(theirs);
        }
        if (other.first_seen, other.first_event_id.as_str())
            < (self.first_seen, self.first_event_id.as_str())
        {
            self.first_event_id = other.first_event_id;
        }
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        for (mine, theirs) in [
            (&mut self.source_ips, other.source_ips),
            (&mut self.vpc_endpoints, other.vpc_endpoints),
            (&mut self.invoked_by, other.invoked_by),
        ] {
            mine.merge(theirs);
        }
    }
}

/// The rollups and counters of one input, one Lambda invocation or one run.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Lifetime rollups.
    pub lifetime: HashMap<RollupKey, Rollup>,
    /// Daily rollups.
    pub daily: HashMap<DailyKey, Rollup>,
    /// What happened to every record.
    pub counts: Reconciliation,
    /// The first [`MAX_PROBLEMS`] record problems.
    pub problems: Vec<RecordProblem>,
    /// Problems counted but not kept.
    pub problems_dropped: u64,
    /// Daily rollups are not folded (see [`Batch::lifetime_only`]).
    skip_daily: bool,
}

impl Batch {
    /// A batch that folds lifetime rollups only, for readers that do not
    /// need the daily ones: a daily rollup per row and day is most of a
    /// batch's memory when the calls span days.
    pub fn lifetime_only() -> Self {
        Batch {
            skip_daily: true,
            ..Batch::default()
        }
    }

    /// Adds one attributed call to every row it touches.
    pub fn fold(&mut self, call: &Call<'_>) {
        let day = call.time.div_euclid(86_400);
        for table_use in &call.tables {
            let (account, region, table) = match &table_use.table {
                Some(t) => (&*t.account, &*t.region, Some(&*t.name)),
                None => (call.home.0, call.home.1, None),
            };
            let key = KeyRef {
                account,
                region,
                table,
                caller: &call.caller.id,
            };
            let (read, write) = (table_use.read, table_use.write);
            match self.lifetime.get_mut(&key) {
                Some(r) => r.add(call, &table_use.indexes, read, write),
                None => {
                    let mut r = Rollup::new(call);
                    r.add(call, &table_use.indexes, read, write);
                    self.lifetime.insert(key.to_owned_key(), r);
                }
            }
            if self.skip_daily {
                continue;
            }
            let daily = DailyKeyRef { key, day };
            match self.daily.get_mut(&daily) {
                Some(r) => r.add(call, &table_use.indexes, read, write),
                None => {
                    let mut r = Rollup::new(call);
                    r.add(call, &table_use.indexes, read, write);
                    self.daily.insert(
                        DailyKey {
                            key: key.to_owned_key(),
                            day,
                        },
                        r,
                    );
                }
            }
        }
    }

    /// Records a problem, keeping the first [`MAX_PROBLEMS`].
    pub fn problem(&mut self, problem: RecordProblem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(problem);
        } else {
            self.problems_dropped += 1;
        }
    }

    /// Merges another batch into this one.
    pub fn merge(&mut self, mut other: Batch) {
        // The larger map takes the smaller one's rows: fewer moves, no rehash
        // of the larger.
        if other.lifetime.len() > self.lifetime.len() {
            std::mem::swap(&mut self.lifetime, &mut other.lifetime);
        }
        if other.daily.len() > self.daily.len() {
            std::mem::swap(&mut self.daily, &mut other.daily);
        }
        merge_rows(&mut self.lifetime, other.lifetime);
        merge_rows(&mut self.daily, other.daily);
        self.counts.merge(&other.counts);
        for p in other.problems {
            self.problem(p);
        }
        self.problems_dropped += other.problems_dropped;
    }

    /// Lifetime rows sorted by account, region, table, then busiest caller first.
    pub fn sorted_lifetime(&self) -> Vec<(&RollupKey, &Rollup)> {
        let mut rows: Vec<_> = self.lifetime.iter().collect();
        // Keys are unique, so the order is total and an unstable sort is exact.
        rows.sort_unstable_by(|(ka, ra), (kb, rb)| {
            (&ka.account, &ka.region, &ka.table)
                .cmp(&(&kb.account, &kb.region, &kb.table))
                .then(rb.calls.cmp(&ra.calls))
                .then(ka.caller.cmp(&kb.caller))
        });
        rows
    }
}

/// Merges the rows of `from` into `into`, moving them.
fn merge_rows<K: Eq + Hash>(into: &mut HashMap<K, Rollup>, from: HashMap<K, Rollup>) {
    for (k, v) in from {
        match into.entry(k) {
            hashbrown::hash_map::Entry::Occupied(mut row) => row.get_mut().merge(v),
            hashbrown::hash_map::Entry::Vacant(row) => {
                row.insert(v);
            }
        }
    }
}
