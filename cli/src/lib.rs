//! The `ddb-audit` command.
//!
//! `analyze` reads CloudTrail files and saved CloudWatch Logs subscription
//! events on a laptop, with no AWS account and no network, and prints who
//! calls which DynamoDB table. The library form ([`run`]) exists so tests
//! drive the command exactly as a user does, arguments in and text out.
//!
//! `callers`, `tables`, `stale`, `new` and `rejects` query the summary table
//! the ingest functions keep; `backfill` applies CloudTrail history from S3
//! to it, exactly once. [`run_with_aws`] runs them with an SDK configuration
//! given by the caller instead of one read from the environment.

mod analyze;
mod aws;
mod backfill;
mod fit;
mod output;
mod query;
mod table;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use output::Format;

/// Who is touching your DynamoDB tables? Attributes DynamoDB calls in
/// CloudTrail to the applications and people that make them.
#[derive(Debug, Parser)]
#[command(
    name = "ddb-audit",
    version,
    about = "Who is touching your DynamoDB tables? Attributes the DynamoDB calls in CloudTrail \
             to the applications and people that make them.",
    after_help = "Start here: ddb-audit analyze DIR_OF_CLOUDTRAIL_FILES\n\
                  More: ddb-audit help analyze"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Count DynamoDB calls per table and caller in local CloudTrail files.
    ///
    /// Reads CloudTrail log files (`.json` or `.json.gz`, as CloudTrail writes
    /// them to S3), saved CloudWatch Logs subscription events, or directories
    /// of them (walked recursively; digest files are skipped). Each eventID
    /// counts once, however many inputs contain it. Needs no AWS credentials
    /// and no network.
    ///
    /// Example:
    ///   aws s3 sync s3://my-trail-bucket/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/ ./trail
    ///   ddb-audit analyze ./trail
    ///   ddb-audit analyze --format json ./trail | jq 'select(.table == "orders")'
    #[command(verbatim_doc_comment)]
    Analyze(AnalyzeArgs),

    /// Create the summary table the ingest functions write to.
    ///
    /// The same schema as the SAM template's: on-demand, a stream with new
    /// and old images (for the notifier), the `by-caller` index, TTL on
    /// `expires_at` and point-in-time recovery. For cargo-lambda deployments
    /// and local runs; region and credentials come from the usual AWS
    /// settings.
    CreateTable(TableArgs),

    /// Who calls a table (or every table), busiest first.
    ///
    /// Lifetime counts, or with --since the sum of the daily rollups from that
    /// UTC day on. Each row carries an estimate of its on-demand request cost.
    ///
    /// Example:
    ///   ddb-audit callers --table orders --account 111122223333 --region us-east-1
    ///   ddb-audit callers --since 2024-03-01 --format csv > callers.csv
    #[command(verbatim_doc_comment)]
    Callers(query::CallersArgs),

    /// Every table a caller touches (the caller index).
    ///
    /// Example:
    ///   ddb-audit tables --caller arn:aws:iam::111122223333:role/service/orders-api
    #[command(verbatim_doc_comment)]
    Tables(query::TablesArgs),

    /// Callers not seen on a table for N days: is that workload still needed?
    ///
    /// Example:
    ///   ddb-audit stale --days 90 --table orders
    #[command(verbatim_doc_comment)]
    Stale(query::StaleArgs),

    /// Callers first seen on a table on or after a UTC day.
    ///
    /// Example:
    ///   ddb-audit new --since 2024-03-01
    #[command(verbatim_doc_comment)]
    New(query::NewArgs),

    /// Objects and log batches the ingest functions could not read, and why.
    Rejects(query::RejectsArgs),

    /// Apply CloudTrail history in S3 to the summary table, exactly once.
    ///
    /// Lists the CloudTrail files under s3://BUCKET/PREFIX (narrowed by
    /// --from/--to using the dates in the keys; digest and Insights files
    /// skipped) and applies each through the same exactly-once path as the
    /// s3-ingest function: running it twice, or over files the function
    /// already applied, counts nothing twice. Attribution settings
    /// (HUMAN_ROLE_PATTERNS, INCLUDE_TABLES, ...) come from the environment,
    /// as for the functions.
    ///
    /// Example:
    ///   ddb-audit backfill s3://my-trail/AWSLogs/111122223333/CloudTrail/us-east-1/ \
    ///       --from 2024-01-01 --to 2024-03-31
    #[command(verbatim_doc_comment)]
    Backfill(backfill::BackfillArgs),
}

/// Where the summary table is.
#[derive(Debug, clap::Args)]
pub struct TableArgs {
    /// The summary table's name.
    #[arg(long, env = "SUMMARY_TABLE", value_name = "NAME")]
    summary_table: String,

    /// Send AWS requests to this endpoint (a local emulator such as moto).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    endpoint_url: Option<String>,
}

/// Arguments of `ddb-audit analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Output format: `table` for people, `json` (JSON Lines, one row per
    /// line) for scripts, `csv` for spreadsheets.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// In the table: full caller ARNs and every column, as wide as they
    /// are, instead of short names fitted to the terminal (JSON and CSV
    /// always carry the full caller).
    #[arg(long)]
    wide: bool,

    /// Print one row per UTC day instead of one row per lifetime.
    #[arg(long)]
    by_day: bool,

    /// Treat sessions of roles matching this glob as people (each session
    /// name is its own caller), and IAM users matching it as people. Matched
    /// against the role or user name and its ARN; repeat for several.
    /// `AWSReservedSSO_*` roles and console sign-ins are people without this;
    /// service-linked roles never are.
    #[arg(
        long = "human-role",
        value_name = "GLOB",
        env = "HUMAN_ROLE_PATTERNS",
        value_delimiter = ','
    )]
    human_roles: Vec<String>,

    /// Only count tables whose name matches this glob (repeatable).
    #[arg(
        long = "include-table",
        value_name = "GLOB",
        env = "INCLUDE_TABLES",
        value_delimiter = ','
    )]
    include_tables: Vec<String>,

    /// Do not count tables whose name matches this glob (repeatable).
    #[arg(
        long = "exclude-table",
        value_name = "GLOB",
        env = "EXCLUDE_TABLES",
        value_delimiter = ','
    )]
    exclude_tables: Vec<String>,

    /// Name applications: a JSON file of rules
    /// `[{"app": "checkout", "callers": ["arn:aws:iam::*:role/checkout-*"]}]`,
    /// first match wins; the name appears in the `app` field.
    #[arg(long, value_name = "FILE", env = "APP_NAMES_FILE")]
    app_names: Option<PathBuf>,

    /// Read files on at most this many threads (default: one per processor).
    #[arg(long, value_name = "N")]
    jobs: Option<std::num::NonZeroUsize>,

    /// Refuse any input that decompresses to more than this many bytes.
    #[arg(long, value_name = "BYTES", env = "MAX_DECOMPRESSED_BYTES",
          default_value_t = ddb_audit_core::decode::DEFAULT_MAX_DECOMPRESSED)]
    max_decompressed_bytes: u64,

    /// CloudTrail files, saved CloudWatch Logs events, or directories.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// Runs the command line `args` (program name first), writing results to
/// `out` and diagnostics to `err`. Returns the process exit code: 0 on
/// success, 1 when an input could not be read (after all the others were),
/// 2 for a usage error.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_from(args, &aws::AwsSource::Environment, out, err)
}

/// [`run`] with the AWS SDK configuration (credentials, region, HTTP client,
/// endpoint) given instead of read from the environment and profile files:
/// for tests and for programs that embed the command. `--endpoint-url`
/// still wins over the configuration's endpoint. `create-table` keeps
/// reading the environment.
pub fn run_with_aws<I, T>(
    args: I,
    aws: &aws_config::SdkConfig,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_from(
        args,
        &aws::AwsSource::Given(Box::new(aws.clone())),
        out,
        err,
    )
}

fn run_from<I, T>(args: I, source: &aws::AwsSource, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            // --help and --version are not errors and go to stdout.
            let target: &mut dyn Write = if e.use_stderr() { err } else { out };
            let _ = target.write_all(text.as_bytes());
            return e.exit_code();
        }
    };
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(&args, out, err),
        Command::CreateTable(args) => table::create(&args, source, out),
        Command::Callers(args) => query::callers(&args, source, out, err),
        Command::Tables(args) => query::tables(&args, source, out, err),
        Command::Stale(args) => query::stale(&args, source, out, err),
        Command::New(args) => query::new(&args, source, out, err),
        Command::Rejects(args) => query::rejects(&args, source, out, err),
        Command::Backfill(args) => backfill::run(&args, source, out, err),
    };
    match result {
        Ok(code) => code,
        // The reader of our output went away (`| head`): stop quietly.
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            let _ = writeln!(err, "ddb-audit: {e:#}");
            1
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<csv::Error>()
                .is_some_and(|c| matches!(c.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe))
    })
}
