//! Attribution (DESIGN.md section 3): which tables a call touched, what kind
//! of call it was on each, and who made it.

use std::borrow::Cow;

use globset::GlobSet;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::caller::{self, Caller, HumanRoles};
use crate::partiql::{self, StatementKind};
use crate::reconcile::{MalformedReason, SkipReason};
use crate::record::{RecordView, Text};
use crate::table::TableRef;
use crate::Error;

/// The only `eventSource` that counts.
pub const DYNAMODB_EVENT_SOURCE: &str = "dynamodb.amazonaws.com";

/// What decides attribution beyond the record itself.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Roles whose sessions are people.
    pub human_roles: HumanRoles,
    /// When set, only tables matching one of these patterns count.
    pub include_tables: Option<GlobSet>,
    /// Tables matching one of these patterns are not counted.
    pub exclude_tables: Option<GlobSet>,
}

impl Rules {
    /// Builds table include/exclude patterns (globs on the table name).
    pub fn table_patterns<I, S>(patterns: I) -> Result<Option<GlobSet>, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        crate::globs::glob_set(patterns, "table pattern")
    }

    fn counts_table(&self, name: &str) -> bool {
        self.include_tables
            .as_ref()
            .is_none_or(|s| s.is_match(name))
            && !self
                .exclude_tables
                .as_ref()
                .is_some_and(|s| s.is_match(name))
    }
}

/// The kind of an operation, before PartiQL statements are looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// Item and stream reads.
    Read,
    /// Item writes.
    Write,
    /// PartiQL: read or write per statement.
    PartiQl,
    /// Everything else: table and stream management, describe and list calls.
    Management,
}

/// Classifies an `eventName`.
pub fn operation_kind(event_name: &str) -> OperationKind {
    match event_name {
        "GetItem" | "BatchGetItem" | "Query" | "Scan" | "TransactGetItems" | "GetRecords"
        | "GetShardIterator" => OperationKind::Read,
        "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems" => {
            OperationKind::Write
        }
        "ExecuteStatement" | "BatchExecuteStatement" | "ExecuteTransaction" => {
            OperationKind::PartiQl
        }
        _ => OperationKind::Management,
    }
}

/// One table touched by a call (or none, for account-level calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUse<'a> {
    /// The table; `None` for calls such as `ListTables` that name no table.
    pub table: Option<TableRef<'a>>,
    /// Indexes used on this table by this call.
    pub indexes: Vec<&'a str>,
    /// The call read this table.
    pub read: bool,
    /// The call wrote this table.
    pub write: bool,
}

/// An attributed call.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// `eventName`.
    pub operation: &'a str,
    /// `eventID`.
    pub event_id: &'a str,
    /// `eventTime` as Unix seconds.
    pub time: i64,
    /// The account and region that received the call (`recipientAccountId`,
    /// `awsRegion`): where account-level calls are counted.
    pub home: (&'a str, &'a str),
    /// Who made it.
    pub caller: Caller<'a>,
    /// The user-agent family.
    pub user_agent: Cow<'static, str>,
    /// `sourceIPAddress`.
    pub source_ip: Option<&'a str>,
    /// `vpcEndpointId`.
    pub vpc_endpoint: Option<&'a str>,
    /// `userIdentity.invokedBy`.
    pub invoked_by: Option<&'a str>,
    /// `errorCode`, when the call failed.
    pub error_code: Option<&'a str>,
    /// The call touched each of these once.
    pub tables: Vec<TableUse<'a>>,
}

impl Call<'_> {
    /// True when the call was refused for lack of permission (`AccessDenied*`).
    pub fn denied(&self) -> bool {
        self.error_code
            .is_some_and(|c| c.starts_with("AccessDenied"))
    }
}

/// The outcome of attributing one record.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// A call to count.
    Call(Call<'a>),
    /// A well-formed record that does not count.
    Skip(SkipReason),
    /// A record that cannot be read; the detail names the field.
    Malformed(MalformedReason, String),
}

/// Why a record cannot be attributed, naming the field.
type Problem = (MalformedReason, String);

/// The longest names a call may carry into the summary table, where they
/// become parts of keys (`pk`, `sk`, the `by-caller` index) and of counter
/// attribute names. DynamoDB refuses a partition key over 2048 bytes, a sort
/// key over 1024 (the `by-caller` index's sort key is the row's `pk`) and an
/// item over 400 KB, and a refused write fails the whole batch on every
/// retry; so a record naming something longer is malformed
/// (`oversize_name`) instead. Every limit is far above what AWS allows the
/// name to be, so only forged or corrupt records meet them.
#[derive(Debug, Clone, Copy)]
pub struct NameLimits;

impl NameLimits {
    /// Account ids (12 digits in AWS) and regions.
    pub const ACCOUNT_OR_REGION: usize = 64;
    /// Table and index names (DynamoDB's own maximum is 255), `eventName`
    /// and `errorCode`.
    pub const NAME: usize = 255;
    /// The caller string (an IAM role ARN, path included, is at most about
    /// 600 bytes), so that `DAY#<day>#CALLER#<caller>` stays under 1024.
    pub const CALLER: usize = 900;
}

fn within(value: &str, max: usize, what: &str) -> Result<(), Problem> {
    if value.len() <= max {
        return Ok(());
    }
    Err((
        MalformedReason::OversizeName,
        format!(
            "{what} is {} bytes, over the {max} the summary table keeps",
            value.len()
        ),
    ))
}

/// Checks every name of an attributed call against [`NameLimits`].
fn names_fit(call: &Call<'_>) -> Result<(), Problem> {
    within(call.operation, NameLimits::NAME, "field `eventName`")?;
    within(
        call.home.0,
        NameLimits::ACCOUNT_OR_REGION,
        "field `recipientAccountId`",
    )?;
    within(
        call.home.1,
        NameLimits::ACCOUNT_OR_REGION,
        "field `awsRegion`",
    )?;
    within(
        &call.caller.id,
        NameLimits::CALLER,
        "the caller (from `userIdentity`)",
    )?;
    if let Some(code) = call.error_code {
        within(code, NameLimits::NAME, "field `errorCode`")?;
    }
    for used in &call.tables {
        if let Some(table) = &used.table {
            within(
                &table.account,
                NameLimits::ACCOUNT_OR_REGION,
                "a table's account",
            )?;
            within(
                &table.region,
                NameLimits::ACCOUNT_OR_REGION,
                "a table's region",
            )?;
            within(&table.name, NameLimits::NAME, "a table name")?;
        }
        for index in &used.indexes {
            within(index, NameLimits::NAME, "an index name")?;
        }
    }
    Ok(())
}

fn required<'a>(field: &'a Option<Text<'a>>, name: &str) -> Result<&'a str, Problem> {
    match field.as_ref().map(|t| t.as_str()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err((
            MalformedReason::MissingField,
            format!("missing field `{name}`"),
        )),
    }
}

/// Parses a CloudTrail `eventTime` into Unix seconds.
pub fn parse_event_time(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// Attributes one record.
pub fn attribute<'a>(record: &'a RecordView<'a>, rules: &Rules) -> Outcome<'a> {
    attribute_inner(record, rules)
        .unwrap_or_else(|(reason, detail)| Outcome::Malformed(reason, detail))
}

fn attribute_inner<'a>(record: &'a RecordView<'a>, rules: &Rules) -> Result<Outcome<'a>, Problem> {
    let source = required(&record.event_source, "eventSource")?;
    if source != DYNAMODB_EVENT_SOURCE {
        return Ok(Outcome::Skip(SkipReason::NotDynamoDb));
    }
    let operation = required(&record.event_name, "eventName")?;
    let event_id = required(&record.event_id, "eventID")?;
    let time_text = required(&record.event_time, "eventTime")?;
    let time = parse_event_time(time_text).ok_or_else(|| {
        (
            MalformedReason::BadTime,
            "field `eventTime` is not an RFC 3339 time".to_owned(),
        )
    })?;
    let account = required(&record.recipient_account_id, "recipientAccountId")?;
    let region = required(&record.aws_region, "awsRegion")?;

    let mut tables = tables_of(record, operation, account, region);
    if tables.iter().any(|u| u.table.is_some()) {
        tables.retain(|u| {
            u.table
                .as_ref()
                .is_some_and(|t| rules.counts_table(&t.name))
        });
        if tables.is_empty() {
            return Ok(Outcome::Skip(SkipReason::Excluded));
        }
    }
    let caller = caller::identify(record, &rules.human_roles);
    let identity = record.user_identity.as_ref();
    let call = Call {
        operation,
        event_id,
        time,
        home: (account, region),
        caller,
        user_agent: crate::agent::family(record.user_agent.as_ref().map(|t| t.as_str())),
        source_ip: non_empty(&record.source_ip_address),
        vpc_endpoint: non_empty(&record.vpc_endpoint_id),
        invoked_by: identity.and_then(|i| non_empty(&i.invoked_by)),
        error_code: non_empty(&record.error_code),
        tables,
    };
    names_fit(&call)?;
    Ok(Outcome::Call(call))
}

fn non_empty<'a>(field: &'a Option<Text<'a>>) -> Option<&'a str> {
    field.as_ref().map(|t| t.as_str()).filter(|t| !t.is_empty())
}

fn tables_of<'a>(
    record: &'a RecordView<'a>,
    operation: &str,
    account: &'a str,
    region: &'a str,
) -> Vec<TableUse<'a>> {
    let kind = operation_kind(operation);
    let params = record.request_parameters.as_ref();
    let mut uses: Vec<TableUse<'a>> = Vec::with_capacity(1);

    if let Some(params) = params {
        if kind == OperationKind::PartiQl {
            let statements = params
                .statement
                .iter()
                .chain(params.items.statements.iter());
            for text in statements {
                if let Some(stmt) = partiql::parse(text.as_str()) {
                    if let Some(table) = TableRef::resolve(stmt.table, account, region) {
                        let read = stmt.kind == StatementKind::Read;
                        add_use(&mut uses, table, stmt.index, read, !read);
                    }
                }
            }
        } else {
            let read = kind == OperationKind::Read;
            let write = kind == OperationKind::Write;
            let index = params.index_name.as_ref().map(|t| t.as_str());
            let named = params.table_name.iter().chain(params.items.tables.iter());
            for name in named {
                if let Some(table) = TableRef::resolve(name.as_str(), account, region) {
                    add_use(&mut uses, table, index, read, write);
                }
            }
            if let Some(table) = params
                .stream_arn
                .as_ref()
                .and_then(|a| TableRef::from_arn(a.as_str()))
            {
                add_use(&mut uses, table, None, read, write);
            }
            if let Some(table) = params
                .shard_iterator
                .as_ref()
                .and_then(|s| TableRef::from_shard_iterator(s.as_str()))
            {
                add_use(&mut uses, table, None, read, write);
            }
        }
    }

    if uses.is_empty() {
        // Fallback: the table resources CloudTrail lists. PartiQL kinds are
        // unknown here (the statement could not be parsed), so only the call
        // counts.
        let (read, write) = match kind {
            OperationKind::Read => (true, false),
            OperationKind::Write => (false, true),
            _ => (false, false),
        };
        let index = params
            .and_then(|p| p.index_name.as_ref())
            .map(|t| t.as_str());
        for resource in record.resources.iter().flatten() {
            if resource.kind.as_ref().map(|k| k.as_str()) != Some("AWS::DynamoDB::Table") {
                continue;
            }
            if let Some(table) = resource
                .arn
                .as_ref()
                .and_then(|a| TableRef::from_arn(a.as_str()))
            {
                add_use(&mut uses, table, index, read, write);
            }
        }
    }

    if uses.is_empty() {
        uses.push(TableUse {
            table: None,
            indexes: Vec::new(),
            read: false,
            write: false,
        });
    }
    uses
}

fn add_use<'a>(
    uses: &mut Vec<TableUse<'a>>,
    table: TableRef<'a>,
    index: Option<&'a str>,
    read: bool,
    write: bool,
) {
    let at = match uses.iter().position(|u| u.table.as_ref() == Some(&table)) {
        Some(i) => i,
        None => {
            uses.push(TableUse {
                table: Some(table),
                indexes: Vec::new(),
                read: false,
                write: false,
            });
            uses.len() - 1
        }
    };
    let slot = &mut uses[at];
    slot.read |= read;
    slot.write |= write;
    if let Some(index) = index.filter(|i| !i.is_empty()) {
        if !slot.indexes.contains(&index) {
            slot.indexes.push(index);
        }
    }
}
