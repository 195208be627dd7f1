//! DynamoDB stream records read back from moto with the Streams API, shaped
//! as Lambda's DynamoDB event source hands them to a function.

use std::collections::HashMap;

use anyhow::Context as _;
use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use serde_json::{json, Value};

use crate::{base64, REGION};

/// One stream record from the Streams API in the Lambda event's JSON.
pub fn lambda_record(
    record: &aws_sdk_dynamodbstreams::types::Record,
    arn: &str,
) -> anyhow::Result<Value> {
    let change = record.dynamodb().context("no dynamodb in the record")?;
    let image = |image: Option<&HashMap<String, AttributeValue>>| {
        image.map(|i| Value::Object(i.iter().map(|(k, v)| (k.clone(), attribute(v))).collect()))
    };
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": change.approximate_creation_date_time().map(|t| t.as_secs_f64()),
        "Keys": image(change.keys()),
        "SequenceNumber": change.sequence_number(),
        "SizeBytes": change.size_bytes().unwrap_or(0),
        "StreamViewType": change.stream_view_type().map(|v| v.as_str()),
    });
    if let Some(new) = image(change.new_image()) {
        dynamodb["NewImage"] = new;
    }
    if let Some(old) = image(change.old_image()) {
        dynamodb["OldImage"] = old;
    }
    Ok(json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": record.event_source().unwrap_or("aws:dynamodb"),
        "awsRegion": record.aws_region().unwrap_or(REGION),
        "dynamodb": dynamodb,
        "eventSourceARN": arn,
    }))
}

fn attribute(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(b) => json!({"NULL": b}),
        AttributeValue::Ss(v) => json!({"SS": v}),
        AttributeValue::Ns(v) => json!({"NS": v}),
        AttributeValue::B(b) => json!({"B": base64(b.as_ref())}),
        AttributeValue::Bs(v) => {
            json!({"BS": v.iter().map(|b| base64(b.as_ref())).collect::<Vec<_>>()})
        }
        AttributeValue::L(v) => json!({"L": v.iter().map(attribute).collect::<Vec<_>>()}),
        AttributeValue::M(m) => {
            json!({"M": m.iter().map(|(k, v)| (k.clone(), attribute(v))).collect::<serde_json::Map<_, _>>()})
        }
        _ => json!({"NULL": true}),
    }
}

/// Every record of the stream `arn` with a sequence number above `after`,
/// in sequence order, as Lambda JSON, and the last sequence number read.
pub async fn read_after(
    streams: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
    after: u128,
) -> anyhow::Result<(Vec<Value>, u128)> {
    let shards = streams
        .describe_stream()
        .stream_arn(arn)
        .send()
        .await?
        .stream_description()
        .map(|d| d.shards().to_vec())
        .unwrap_or_default();
    let mut out = Vec::new();
    for shard in shards {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(shard.shard_id().context("shard id")?)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await?
            .shard_iterator()
            .map(str::to_owned);
        // Bounded: a shard of moto's holds far fewer pages.
        for _ in 0..10_000 {
            let Some(it) = iterator else { break };
            let page = streams.get_records().shard_iterator(it).send().await?;
            if page.records().is_empty() {
                break;
            }
            for record in page.records() {
                let lambda = lambda_record(record, arn)?;
                let sequence: u128 = lambda["dynamodb"]["SequenceNumber"]
                    .as_str()
                    .context("sequence number")?
                    .parse()?;
                if sequence > after {
                    out.push((sequence, lambda));
                }
            }
            iterator = page.next_shard_iterator().map(str::to_owned);
        }
    }
    out.sort_by_key(|(sequence, _)| *sequence);
    let last = out.last().map_or(after, |(sequence, _)| *sequence);
    Ok((out.into_iter().map(|(_, record)| record).collect(), last))
}
