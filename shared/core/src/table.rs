//! Tables named by a call: plain names, table ARNs (cross-account access),
//! stream ARNs and shard iterators.

use std::borrow::Cow;

/// A DynamoDB table: owning account, region and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableRef<'a> {
    /// The account that owns the table.
    pub account: Cow<'a, str>,
    /// The table's region.
    pub region: Cow<'a, str>,
    /// The table name.
    pub name: Cow<'a, str>,
}

/// The parts of a DynamoDB ARN that name a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableArn<'a> {
    /// Region field of the ARN.
    pub region: &'a str,
    /// Account field of the ARN.
    pub account: &'a str,
    /// Table name (the segment after `table/`).
    pub name: &'a str,
}

/// Parses `arn:PARTITION:dynamodb:REGION:ACCOUNT:table/NAME[/stream/...|/index/...|/backup/...]`.
///
/// Returns `None` for anything that is not a DynamoDB table ARN.
pub fn parse_table_arn(text: &str) -> Option<TableArn<'_>> {
    let rest = text.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let _partition = parts.next()?;
    if parts.next()? != "dynamodb" {
        return None;
    }
    let region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?.strip_prefix("table/")?;
    let name = resource.split('/').next()?;
    if name.is_empty() || region.is_empty() || account.is_empty() {
        return None;
    }
    Some(TableArn {
        region,
        account,
        name,
    })
}

impl<'a> TableRef<'a> {
    /// Resolves a `tableName` value: an ARN names its own account and region;
    /// a plain name belongs to the account and region that received the call.
    pub fn resolve(name_or_arn: &'a str, account: &'a str, region: &'a str) -> Option<Self> {
        if name_or_arn.starts_with("arn:") {
            return Self::from_arn(name_or_arn);
        }
        let name = name_or_arn.trim();
        if name.is_empty() {
            return None;
        }
        Some(TableRef {
            account: Cow::Borrowed(account),
            region: Cow::Borrowed(region),
            name: Cow::Borrowed(name),
        })
    }

    /// The table of a table, stream, index or backup ARN.
    pub fn from_arn(arn: &'a str) -> Option<Self> {
        let parsed = parse_table_arn(arn)?;
        Some(TableRef {
            account: Cow::Borrowed(parsed.account),
            region: Cow::Borrowed(parsed.region),
            name: Cow::Borrowed(parsed.name),
        })
    }

    /// The table of a Streams shard iterator, which starts with the stream ARN
    /// followed by `|`.
    pub fn from_shard_iterator(iterator: &'a str) -> Option<Self> {
        Self::from_arn(iterator.split('|').next()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_of_all_table_resources_name_the_table() {
        for arn in [
            "arn:aws:dynamodb:us-west-2:123456789012:table/Music",
            "arn:aws:dynamodb:us-west-2:123456789012:table/Music/stream/2021-04-15T04:02:47.428",
            "arn:aws:dynamodb:us-west-2:123456789012:table/Music/index/ByAlbum",
            "arn:aws:dynamodb:us-west-2:123456789012:table/Music/backup/01489602797149-73d8d5bc",
        ] {
            let t = TableRef::from_arn(arn).unwrap();
            assert_eq!(
                (&*t.account, &*t.region, &*t.name),
                ("123456789012", "us-west-2", "Music")
            );
        }
    }

    #[test]
    fn other_partitions_are_accepted_and_other_services_are_not() {
        assert!(parse_table_arn("arn:aws-cn:dynamodb:cn-north-1:1:table/t").is_some());
        assert!(parse_table_arn("arn:aws:s3:::bucket/table/x").is_none());
        assert!(parse_table_arn("arn:aws:dynamodb:us-east-1:1:global-table/t").is_none());
        assert!(parse_table_arn("arn:aws:dynamodb:us-east-1:1:table/").is_none());
    }
}
