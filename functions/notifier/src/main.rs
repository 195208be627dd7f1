//! `notifier`: the summary table's DynamoDB stream into new-caller and
//! first-denied notices on SNS. All logic is in
//! `ddb_audit_aws::notify_handler`; this file only wires it to the runtime.

use ddb_audit_aws::ingest::init_logging;
use ddb_audit_aws::notify_handler::{handle_stream, NotifyDeps, StreamEvent};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let deps = NotifyDeps::from_env("notifier").await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<StreamEvent>| async move { handle_stream(deps, event).await },
    ))
    .await
}
