//! `logs-ingest`: CloudWatch Logs subscription batches of CloudTrail events
//! into the ddb-audit summary table. All logic is in
//! `ddb_audit_aws::ingest`; this file only wires it to the Lambda runtime.

use ddb_audit_aws::ingest::{handle_logs, init_logging, Deps};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let deps = Deps::from_env("logs-ingest").await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move { handle_logs(deps, event).await },
    ))
    .await
}
