//! Commands on the summary table.

use std::io::Write;

use anyhow::Context as _;
use ddb_audit_core::store::SummaryStore;

use crate::TableArgs;

/// Builds a DynamoDB client from the usual AWS settings, pointed at
/// `--endpoint-url` when given.
async fn client(args: &TableArgs) -> aws_sdk_dynamodb::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = &args.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    aws_sdk_dynamodb::Client::new(&loader.load().await)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub(crate) fn create(args: &TableArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    runtime()?.block_on(async {
        let store = SummaryStore::new(client(args).await, &args.summary_table, 0, 0);
        store.create_table().await?;
        writeln!(
            out,
            "created summary table {} (on-demand, stream NEW_AND_OLD_IMAGES, index by-caller, TTL expires_at, PITR on)",
            args.summary_table
        )?;
        Ok(0)
    })
}
