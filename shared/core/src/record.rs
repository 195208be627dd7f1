//! A borrowed view of one CloudTrail record: only the fields attribution
//! reads, borrowed from the input buffer where JSON escaping allows.
//!
//! Everything else in the record (item keys, attribute values, response
//! elements) is skipped by the parser without being built, which is both the
//! fast path and the reason no key value can leak out of the core.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A string borrowed from the input when it has no escapes, owned otherwise.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Text<'_> {
    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A flag CloudTrail writes either as a JSON boolean or as the string `"true"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagVisitor;
        impl Visitor<'_> for FlagVisitor {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean or \"true\"/\"false\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                Ok(Flag(v.eq_ignore_ascii_case("true")))
            }
        }
        deserializer.deserialize_any(FlagVisitor)
    }
}

/// One CloudTrail record, as much of it as ddb-audit reads.
#[derive(Debug, Default, Deserialize)]
pub struct RecordView<'a> {
    /// `eventSource`: only `dynamodb.amazonaws.com` counts.
    #[serde(borrow, rename = "eventSource")]
    pub event_source: Option<Text<'a>>,
    /// `eventName`: the API operation.
    #[serde(borrow, rename = "eventName")]
    pub event_name: Option<Text<'a>>,
    /// `eventTime`: RFC 3339, UTC.
    #[serde(borrow, rename = "eventTime")]
    pub event_time: Option<Text<'a>>,
    /// `eventID`: unique per event; used to count each event once.
    #[serde(borrow, rename = "eventID")]
    pub event_id: Option<Text<'a>>,
    /// `awsRegion`: the region the call was made in.
    #[serde(borrow, rename = "awsRegion")]
    pub aws_region: Option<Text<'a>>,
    /// `recipientAccountId`: the account that received the call.
    #[serde(borrow, rename = "recipientAccountId")]
    pub recipient_account_id: Option<Text<'a>>,
    /// `errorCode`: present when the call failed.
    #[serde(borrow, rename = "errorCode")]
    pub error_code: Option<Text<'a>>,
    /// `sourceIPAddress`: an IP, or a service name for calls made by AWS services.
    #[serde(borrow, rename = "sourceIPAddress")]
    pub source_ip_address: Option<Text<'a>>,
    /// `userAgent`: reduced to a family before it is kept.
    #[serde(borrow, rename = "userAgent")]
    pub user_agent: Option<Text<'a>>,
    /// `vpcEndpointId`: set when the call came through a VPC endpoint.
    #[serde(borrow, rename = "vpcEndpointId")]
    pub vpc_endpoint_id: Option<Text<'a>>,
    /// `sessionCredentialFromConsole`: the call came from a browser session.
    #[serde(rename = "sessionCredentialFromConsole")]
    pub session_credential_from_console: Option<Flag>,
    /// `userIdentity`: who made the call.
    #[serde(borrow, rename = "userIdentity")]
    pub user_identity: Option<UserIdentity<'a>>,
    /// `requestParameters`: where the table names are.
    #[serde(borrow, rename = "requestParameters")]
    pub request_parameters: Option<RequestParameters<'a>>,
    /// `resources`: the fallback for the table.
    #[serde(borrow)]
    pub resources: Option<Vec<Resource<'a>>>,
}

/// `userIdentity`, the fields used to name a caller.
#[derive(Debug, Default, Deserialize)]
pub struct UserIdentity<'a> {
    /// `type`: AssumedRole, IAMUser, AWSService, ...
    #[serde(borrow, rename = "type")]
    pub kind: Option<Text<'a>>,
    /// `arn` of the principal.
    #[serde(borrow)]
    pub arn: Option<Text<'a>>,
    /// `principalId`.
    #[serde(borrow, rename = "principalId")]
    pub principal_id: Option<Text<'a>>,
    /// `accountId` of the principal.
    #[serde(borrow, rename = "accountId")]
    pub account_id: Option<Text<'a>>,
    /// `invokedBy`: the AWS service that made the call on the principal's behalf.
    #[serde(borrow, rename = "invokedBy")]
    pub invoked_by: Option<Text<'a>>,
    /// `userName`.
    #[serde(borrow, rename = "userName")]
    pub user_name: Option<Text<'a>>,
    /// `sessionContext`.
    #[serde(borrow, rename = "sessionContext")]
    pub session_context: Option<SessionContext<'a>>,
    /// `onBehalfOf`: the Identity Center user.
    #[serde(borrow, rename = "onBehalfOf")]
    pub on_behalf_of: Option<OnBehalfOf<'a>>,
}

/// `userIdentity.sessionContext`.
#[derive(Debug, Default, Deserialize)]
pub struct SessionContext<'a> {
    /// The role (or user) that issued the session.
    #[serde(borrow, rename = "sessionIssuer")]
    pub session_issuer: Option<SessionIssuer<'a>>,
}

/// `userIdentity.sessionContext.sessionIssuer`.
#[derive(Debug, Default, Deserialize)]
pub struct SessionIssuer<'a> {
    /// `type`: usually `Role`.
    #[serde(borrow, rename = "type")]
    pub kind: Option<Text<'a>>,
    /// The IAM role ARN, path included.
    #[serde(borrow)]
    pub arn: Option<Text<'a>>,
    /// The role name.
    #[serde(borrow, rename = "userName")]
    pub user_name: Option<Text<'a>>,
}

/// `userIdentity.onBehalfOf`.
#[derive(Debug, Default, Deserialize)]
pub struct OnBehalfOf<'a> {
    /// The Identity Center user id.
    #[serde(borrow, rename = "userId")]
    pub user_id: Option<Text<'a>>,
}

/// One entry of `resources[]`.
#[derive(Debug, Default, Deserialize)]
pub struct Resource<'a> {
    /// `type`, e.g. `AWS::DynamoDB::Table`.
    #[serde(borrow, rename = "type")]
    pub kind: Option<Text<'a>>,
    /// `ARN`.
    #[serde(borrow, rename = "ARN", alias = "arn")]
    pub arn: Option<Text<'a>>,
}

/// The parts of `requestParameters` that name tables, indexes and statements.
///
/// Field names are matched without regard to case, since CloudTrail writes
/// both `tableName` and `TableName` inside transactions.
#[derive(Debug, Default)]
pub struct RequestParameters<'a> {
    /// `tableName`: a name or a table ARN.
    pub table_name: Option<Text<'a>>,
    /// `indexName`.
    pub index_name: Option<Text<'a>>,
    /// `statement` (PartiQL `ExecuteStatement`).
    pub statement: Option<Text<'a>>,
    /// `streamArn` (Streams API).
    pub stream_arn: Option<Text<'a>>,
    /// `shardIterator` (Streams `GetRecords`): starts with the stream ARN.
    pub shard_iterator: Option<Text<'a>>,
    /// Tables and statements found in `requestItems`, `transactItems`,
    /// `transactStatements` and `statements`.
    pub items: Items<'a>,
}

/// Table names and PartiQL statements gathered from the item lists of batch
/// and transaction calls.
#[derive(Debug, Default)]
pub struct Items<'a> {
    /// Table names or ARNs, in the order met.
    pub tables: Vec<Text<'a>>,
    /// PartiQL statements, in the order met.
    pub statements: Vec<Text<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for RequestParameters<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParamsVisitor;
        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = RequestParameters<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = RequestParameters::default();
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    let key = key.as_str();
                    match out.slot(key) {
                        Some(slot) if slot.is_none() => *slot = map.next_value()?,
                        Some(_) => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        None if is_item_list(key) => {
                            map.next_value_seed(ItemsSeed {
                                items: &mut out.items,
                                depth: 0,
                            })?;
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(ParamsVisitor)
    }
}

impl<'a> RequestParameters<'a> {
    /// The field a `requestParameters` key names, if any (matched without
    /// regard to case). The first value given for a field is kept.
    pub(crate) fn slot(&mut self, key: &str) -> Option<&mut Option<Text<'a>>> {
        if key.eq_ignore_ascii_case("tableName") {
            Some(&mut self.table_name)
        } else if key.eq_ignore_ascii_case("indexName") {
            Some(&mut self.index_name)
        } else if key.eq_ignore_ascii_case("statement") {
            Some(&mut self.statement)
        } else if key.eq_ignore_ascii_case("streamArn") {
            Some(&mut self.stream_arn)
        } else if key.eq_ignore_ascii_case("shardIterator") {
            Some(&mut self.shard_iterator)
        } else {
            None
        }
    }
}

/// Whether a `requestParameters` key holds a list of items naming tables.
pub(crate) fn is_item_list(key: &str) -> bool {
    [
        "requestItems",
        "transactItems",
        "transactStatements",
        "statements",
    ]
    .iter()
    .any(|k| key.eq_ignore_ascii_case(k))
}

/// Gathers tables and statements from an item list.
///
/// A JSON object contributes its keys as table names (`BatchGetItem`,
/// `BatchWriteItem`); an array contributes each element's `tableName` and
/// `statement`, looking one level into SDK-shaped `put`/`update`/`delete`/
/// `conditionCheck`/`get` wrappers.
struct ItemsSeed<'s, 'a> {
    items: &'s mut Items<'a>,
    depth: u8,
}

impl<'de: 'a, 'a> de::DeserializeSeed<'de> for ItemsSeed<'_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for ItemsSeed<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object or an array of objects")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Object form: { "TableA": [...], "arn:...:table/B": {...} }.
        while let Some(key) = map.next_key::<Text<'de>>()? {
            self.items.tables.push(key);
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(EntrySeed {
                items: &mut *self.items,
                depth: self.depth,
            })?
            .is_some()
        {}
        Ok(())
    }
}

/// One element of an item list.
struct EntrySeed<'s, 'a> {
    items: &'s mut Items<'a>,
    depth: u8,
}

impl<'de: 'a, 'a> de::DeserializeSeed<'de> for EntrySeed<'_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for EntrySeed<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an item entry")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut table_seen = false;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let key = key.as_str();
            if key.eq_ignore_ascii_case("tableName") && !table_seen {
                table_seen = true;
                let table: Text<'de> = map.next_value()?;
                self.items.tables.push(table);
            } else if key.eq_ignore_ascii_case("statement") {
                let statement: Text<'de> = map.next_value()?;
                self.items.statements.push(statement);
            } else if self.depth == 0 && is_transact_wrapper(key) {
                map.next_value_seed(EntrySeed {
                    items: &mut *self.items,
                    depth: 1,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
    // Anything that is not an object carries no table: pass over it.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

fn is_transact_wrapper(key: &str) -> bool {
    ["put", "update", "delete", "conditionCheck", "get"]
        .iter()
        .any(|k| key.eq_ignore_ascii_case(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let json = r#"{"eventName":"GetItem","userAgent":"a\"b"}"#;
        let r: RecordView = serde_json::from_str(json).unwrap();
        assert!(matches!(r.event_name.unwrap().0, Cow::Borrowed("GetItem")));
        assert_eq!(r.user_agent.unwrap().as_str(), "a\"b");
    }

    #[test]
    fn request_parameters_match_field_names_without_case() {
        let json = r#"{"TableName":"t","IndexName":"i","key":{"k":"secret"}}"#;
        let p: RequestParameters = serde_json::from_str(json).unwrap();
        assert_eq!(p.table_name.unwrap().as_str(), "t");
        assert_eq!(p.index_name.unwrap().as_str(), "i");
    }

    #[test]
    fn item_lists_in_both_shapes_give_their_tables() {
        let json = r#"{"requestItems":{"a":[{"putRequest":{}}],"b":{"keys":[]}},
            "transactItems":[{"tableName":"c"},{"Put":{"TableName":"d"}},{"statement":"SELECT 1 FROM e"}, 5]}"#;
        let p: RequestParameters = serde_json::from_str(json).unwrap();
        let tables: Vec<_> = p.items.tables.iter().map(Text::as_str).collect();
        assert_eq!(tables, ["a", "b", "c", "d"]);
        assert_eq!(p.items.statements.len(), 1);
    }

    #[test]
    fn flag_reads_string_or_bool() {
        let a: Flag = serde_json::from_str("\"true\"").unwrap();
        let b: Flag = serde_json::from_str("false").unwrap();
        assert!(a.0 && !b.0);
    }
}
