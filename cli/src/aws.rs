//! The CLI's one door to AWS: the SDK configuration (from the usual AWS
//! settings, or given by the caller of [`crate::run_with_aws`]), the clients
//! built from it, and the check that turns a missing table, missing
//! credentials or an unreachable endpoint into one clear sentence.

use std::time::Duration;

use anyhow::{anyhow, bail};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;

use crate::TableArgs;

/// Where the AWS settings come from.
#[derive(Debug, Clone, Default)]
pub(crate) enum AwsSource {
    /// The usual chain: environment, profile, SSO, instance or task role.
    #[default]
    Environment,
    /// A configuration built by the caller (tests, embedding programs).
    Given(Box<SdkConfig>),
}

/// The SDK configuration to use, with bounded retries and timeouts when it
/// is read from the environment.
pub(crate) async fn sdk_config(source: &AwsSource, args: &TableArgs) -> SdkConfig {
    match source {
        AwsSource::Given(config) => (**config).clone(),
        AwsSource::Environment => {
            let timeouts = aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build();
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
                .timeout_config(timeouts);
            if let Some(url) = &args.endpoint_url {
                loader = loader.endpoint_url(url);
            }
            loader.load().await
        }
    }
}

/// A DynamoDB client; `--endpoint-url` wins over the configuration's.
pub(crate) fn dynamodb(sdk: &SdkConfig, args: &TableArgs) -> aws_sdk_dynamodb::Client {
    let mut builder = aws_sdk_dynamodb::config::Builder::from(sdk);
    if let Some(url) = &args.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

/// An S3 client; path-style addressing when a custom endpoint is in use
/// (local servers have no per-bucket host names) or
/// `AWS_S3_FORCE_PATH_STYLE` says so.
pub(crate) fn s3(sdk: &SdkConfig, args: &TableArgs, path_style: bool) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(sdk);
    if let Some(url) = &args.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    let custom_endpoint = args.endpoint_url.is_some() || sdk.endpoint_url().is_some();
    builder = builder.force_path_style(path_style || custom_endpoint);
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// Checks that the summary table can be reached before anything else runs,
/// so that the usual mistakes read as one sentence. A principal that may not
/// call `DescribeTable` is let through: the queries themselves will say.
pub(crate) async fn check_table(
    sdk: &SdkConfig,
    client: &aws_sdk_dynamodb::Client,
    args: &TableArgs,
) -> anyhow::Result<()> {
    let Some(region) = client.config().region().map(|r| r.to_string()) else {
        bail!(
            "no AWS region is set: set AWS_REGION (or a region in your AWS profile) to the summary table's region"
        );
    };
    let table = &args.summary_table;
    let where_ = match args.endpoint_url.as_deref().or_else(|| sdk.endpoint_url()) {
        Some(url) => format!("{region} at {url}"),
        None => region,
    };
    match client.describe_table().table_name(table).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(match explain(&e, table, &where_) {
            Some(clear) => clear,
            None => return Ok(()),
        }),
    }
}

/// One sentence for a failed `DescribeTable`; `None` when the principal may
/// simply not describe tables.
fn explain<R: std::fmt::Debug>(
    e: &SdkError<DescribeTableError, R>,
    table: &str,
    where_: &str,
) -> Option<anyhow::Error> {
    use aws_sdk_dynamodb::error::ProvideErrorMetadata as _;
    let text = DisplayErrorContext(e).to_string();
    if let SdkError::ServiceError(service) = e {
        let err = service.err();
        if matches!(err, DescribeTableError::ResourceNotFoundException(_)) {
            return Some(anyhow!(
                "the summary table `{table}` does not exist in {where_}: check --summary-table (or SUMMARY_TABLE), the AWS region and --endpoint-url"
            ));
        }
        let code = err.code().unwrap_or("");
        if code.starts_with("AccessDenied") {
            return None;
        }
        if code.contains("Token") || code.contains("Signature") || code.contains("Credential") {
            return Some(anyhow!(
                "AWS rejected the credentials ({code}): refresh them (for example `aws sso login`) or pick another profile with AWS_PROFILE"
            ));
        }
        return Some(anyhow!(
            "DescribeTable on the summary table `{table}` failed: {code}: {}",
            err.message().unwrap_or("no message")
        ));
    }
    if text.to_ascii_lowercase().contains("credential") {
        return Some(anyhow!(
            "no AWS credentials were found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws sso login`"
        ));
    }
    if matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) {
        return Some(anyhow!(
            "could not reach DynamoDB in {where_}: check the network, the region and --endpoint-url"
        ));
    }
    Some(anyhow!(
        "DescribeTable on the summary table `{table}` failed: {text}"
    ))
}

/// A single-threaded runtime for the queries.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
