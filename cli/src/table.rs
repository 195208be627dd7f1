//! `ddb-audit create-table`.

use std::io::Write;

use ddb_audit_aws::store::SummaryStore;

use crate::aws::{self, AwsSource};
use crate::TableArgs;

pub(crate) fn create(
    args: &TableArgs,
    source: &AwsSource,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    aws::runtime()?.block_on(async {
        let sdk = aws::sdk_config(source, args).await;
        let store = SummaryStore::new(aws::dynamodb(&sdk, args), &args.summary_table, 0, 0);
        store.create_table().await?;
        writeln!(
            out,
            "created summary table {} (on-demand, stream NEW_AND_OLD_IMAGES, index by-caller, TTL expires_at, PITR on)",
            args.summary_table
        )?;
        Ok(0)
    })
}
