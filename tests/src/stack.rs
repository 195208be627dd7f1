//! What the ingest and notifier tests deploy on moto: the summary table, the
//! trail bucket and the notices topic, with ingest dependencies over them.

use anyhow::Context;
use ddb_audit_aws::ingest::Deps;
use ddb_audit_aws::store::SummaryStore;
use ddb_audit_core::config::Config;

use crate::moto::Moto;

/// The stack's parts the tests use.
pub struct Stack {
    /// The ingest functions' dependencies (`SUMMARY_TABLE` = the table).
    pub ingest: Deps,
    /// The notices topic's ARN.
    pub topic: String,
    /// The summary table's stream, which the notifier reads.
    pub stream_arn: String,
}

/// Creates `table` (with its stream), `bucket` and a notices topic on `moto`.
/// The store applies two chunks at a time: moto copies every table for each
/// transaction, so a longer queue only waits.
pub async fn deploy(
    moto: &Moto,
    table: &str,
    bucket: &str,
    function: &'static str,
) -> anyhow::Result<Stack> {
    let config = Config::from_vars(|name| (name == "SUMMARY_TABLE").then(|| table.to_owned()))?;
    let store = SummaryStore::new(moto.dynamodb(), table, 30, 90).with_concurrency(2);
    store.create_table().await?;
    let s3 = moto.s3();
    s3.create_bucket().bucket(bucket).send().await?;
    let topic = moto
        .sns()
        .create_topic()
        .name("ddb-audit-notices")
        .send()
        .await?
        .topic_arn()
        .context("no topic ARN")?
        .to_owned();
    let stream_arn = moto
        .dynamodb()
        .describe_table()
        .table_name(table)
        .send()
        .await?
        .table()
        .and_then(|t| t.latest_stream_arn())
        .context("the summary table has no stream")?
        .to_owned();
    Ok(Stack {
        ingest: Deps {
            config,
            store,
            s3,
            function,
        },
        topic,
        stream_arn,
    })
}
