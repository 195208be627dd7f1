//! A real AWS-compatible server for the integration tests: moto's server mode
//! (`python3 -m moto.server`, PyPI `moto[server]`), started on a free loopback
//! port and stopped when the [`Moto`] is dropped.
//!
//! `make test` installs a pinned moto into `.venv` and points `MOTO_PYTHON` at
//! it. A missing moto is an error from [`Moto::start`], so a test that needs the
//! server fails with a message saying how to get one; it is never skipped.
//!
//! Only 127.0.0.1 is ever contacted: the server binds there, the SDK
//! configuration built here has a fixed endpoint, region and credentials and
//! reads no environment variable, profile file or instance metadata.
//!
//! A start takes 0.33-0.45 s on the 2-core development machine (Python
//! start-up and the import of moto; measured by [`Moto::started_in`], which the
//! `harness` tests print), so each test can have a server of its own.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, Intercept, SharedCredentialsProvider};
use serde_json::Value;

/// The region every client built here uses.
pub const REGION: &str = "us-east-1";

/// How long [`Moto::start`] waits for the server to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What to do when there is no moto to run.
const HINT: &str = "run `make test` (it installs moto into .venv) or set MOTO_PYTHON to a python that has `moto[server]`";

/// How the server runs requests that arrive at the same time.
///
/// moto's server is threaded (werkzeug, one thread per connection) and its
/// DynamoDB backend takes no lock: concurrent writes can lose updates (two
/// `UpdateItem` / `TransactWriteItems` ADDs that create the same item at once
/// leave 1 instead of 2; a cancelled transaction rolls its whole table back to
/// a copy taken when it started, erasing writes other requests made to that
/// table in between). Real DynamoDB does neither, so by default the harness
/// runs moto's requests one at a time; connections, and so the interleaving
/// of calls seen by the code under test, stay concurrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Requests {
    /// One request at a time (a lock around moto's WSGI application): each
    /// call is atomic, as DynamoDB's are. The default.
    #[default]
    OneAtATime,
    /// moto as it comes: requests run in parallel threads, with the races above.
    Concurrent,
}

/// Run by [`Moto::start_with_options`] as `python -c BOOTSTRAP -H 127.0.0.1
/// -p PORT`: moto's server module with two additions, described in the file
/// (shared with `make demo`): it exits when its standard input closes, so no
/// server outlives the test process, and by default it runs requests one at a
/// time (`DDB_AUDIT_MOTO_REQUESTS`).
const BOOTSTRAP: &str = include_str!("../moto_server.py");

/// A moto server on 127.0.0.1, killed (and reaped) on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// Held open for the life of the server; see [`BOOTSTRAP`].
    _stdin: ChildStdin,
    port: u16,
    log: tempfile::NamedTempFile,
    started_in: Duration,
}

impl Moto {
    /// Starts moto with [`python()`] (`MOTO_PYTHON`, else `.venv/bin/python`,
    /// else `python3`), running requests one at a time.
    pub fn start() -> anyhow::Result<Moto> {
        Moto::start_with(&python())
    }

    /// Starts moto with the given python interpreter, running requests one
    /// at a time.
    pub fn start_with(python: &str) -> anyhow::Result<Moto> {
        Moto::start_with_options(python, Requests::OneAtATime)
    }

    /// Starts moto with the given python interpreter and waits (at most
    /// [`START_TIMEOUT`]) until it answers `GET /moto-api/`.
    ///
    /// Errors name the command, say how to get moto, and end with the tail of
    /// the server's log.
    pub fn start_with_options(python: &str, requests: Requests) -> anyhow::Result<Moto> {
        // A port picked by binding :0 can be taken by someone else before moto
        // binds it; when moto says so, try another one (a bounded number of times).
        let mut last = None;
        for _ in 0..3 {
            match Moto::try_start(python, requests) {
                Ok(moto) => return Ok(moto),
                Err(StartError::PortTaken(err)) => last = Some(err),
                Err(StartError::Failed(err)) => return Err(err),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("moto did not start")))
    }

    fn try_start(python: &str, requests: Requests) -> Result<Moto, StartError> {
        let port = free_port().map_err(StartError::Failed)?;
        let args = ["-H", "127.0.0.1", "-p", &port.to_string()];
        let shown = format!(
            "{python} -m moto.server {} (through the harness's bootstrap)",
            args.join(" ")
        );
        let fail = |what: String, log: Option<&mut File>| {
            let tail = log.map(log_tail).unwrap_or_default();
            anyhow!(
                "could not start moto (`{shown}`): {what}\n{HINT}{}",
                if tail.is_empty() {
                    String::new()
                } else {
                    format!("\n--- moto log (tail) ---\n{tail}")
                }
            )
        };
        let log = tempfile::Builder::new()
            .prefix("moto-")
            .suffix(".log")
            .tempfile()
            .map_err(|e| StartError::Failed(fail(format!("no log file: {e}"), None)))?;
        // One open file for both streams (a shared offset), so they interleave
        // instead of overwriting each other.
        let stdout = log.reopen().map_err(|e| StartError::Failed(e.into()))?;
        let stderr = stdout
            .try_clone()
            .map_err(|e| StartError::Failed(e.into()))?;
        let started = Instant::now();
        let mut child = Command::new(python)
            .arg("-c")
            .arg(BOOTSTRAP)
            .args(args)
            .env(
                "DDB_AUDIT_MOTO_REQUESTS",
                match requests {
                    Requests::OneAtATime => "one-at-a-time",
                    Requests::Concurrent => "concurrent",
                },
            )
            .env("PYTHONUNBUFFERED", "1")
            // moto must not look for credentials or a region of its own.
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", REGION)
            .env_remove("AWS_PROFILE")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                StartError::Failed(fail(
                    format!("cannot run MOTO_PYTHON `{python}`: {e}"),
                    None,
                ))
            })?;
        let stdin = child.stdin.take().expect("stdin is piped");
        // From here on the Moto owns the child: any early return drops it,
        // which kills and reaps the process.
        let mut moto = Moto {
            child,
            _stdin: stdin,
            port,
            log,
            started_in: Duration::ZERO,
        };
        let deadline = started + START_TIMEOUT;
        loop {
            if let Some(status) = moto
                .child
                .try_wait()
                .map_err(|e| StartError::Failed(e.into()))?
            {
                let mut log = moto
                    .log
                    .reopen()
                    .map_err(|e| StartError::Failed(e.into()))?;
                let tail = log_tail(&mut log);
                let err = fail(format!("the server exited with {status}"), Some(&mut log));
                return Err(if tail.contains("Address already in use") {
                    StartError::PortTaken(err)
                } else {
                    StartError::Failed(err)
                });
            }
            if let Ok((200, _)) = moto.http("GET", "/moto-api/", Duration::from_millis(500)) {
                moto.started_in = started.elapsed();
                return Ok(moto);
            }
            if Instant::now() >= deadline {
                let mut log = moto
                    .log
                    .reopen()
                    .map_err(|e| StartError::Failed(e.into()))?;
                return Err(StartError::Failed(fail(
                    format!(
                        "no answer from http://127.0.0.1:{port}/moto-api/ within {START_TIMEOUT:?}"
                    ),
                    Some(&mut log),
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How long the start took, from spawning python to the first answer.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The tail of the server's log (its stdout and stderr), for messages.
    pub fn log_tail(&self) -> String {
        self.log
            .reopen()
            .map(|mut f| log_tail(&mut f))
            .unwrap_or_default()
    }

    /// An SDK configuration for this server: its endpoint, region
    /// `us-east-1`, static credentials `testing`/`testing`, the latest
    /// behaviour version, standard retries (3 attempts, short back-off),
    /// bounded timeouts and a plain-HTTP client that uses no proxy. Built in
    /// memory: no environment variable (`AWS_*`, `HTTP_PROXY`), profile file
    /// or instance metadata is consulted, so tests never leave the machine.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(Region::new(REGION))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "moto",
            )))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(20))
                    .with_max_backoff(Duration::from_millis(200)),
            )
            // Generous but bounded: moto copies every table for each
            // transaction, and on a loaded 2-core machine (a build beside the
            // tests) one request can wait tens of seconds for the CPU.
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(120))
                    .operation_timeout(Duration::from_secs(300))
                    .build(),
            )
            .build()
    }

    /// A DynamoDB client for this server.
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config())
    }

    /// A DynamoDB client for this server with an interceptor attached (for
    /// example a [`crate::faults::Faults`]).
    pub fn dynamodb_with(&self, interceptor: impl Intercept + 'static) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(&self.sdk_config())
            .interceptor(interceptor)
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// An S3 client for this server, with path-style addressing
    /// (`http://127.0.0.1:PORT/bucket/key`), as moto needs.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// An S3 client like [`Moto::s3`] with an interceptor attached.
    pub fn s3_with(&self, interceptor: impl Intercept + 'static) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .interceptor(interceptor)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// An SNS client for this server.
    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.sdk_config())
    }

    /// An SNS client for this server with an interceptor attached.
    pub fn sns_with(&self, interceptor: impl Intercept + 'static) -> aws_sdk_sns::Client {
        let config = aws_sdk_sns::config::Builder::from(&self.sdk_config())
            .interceptor(interceptor)
            .build();
        aws_sdk_sns::Client::from_conf(config)
    }

    /// Clears every resource in the server (`POST /moto-api/reset`).
    pub fn reset(&self) -> anyhow::Result<()> {
        match self.http("POST", "/moto-api/reset", Duration::from_secs(10))? {
            (200, _) => Ok(()),
            (status, body) => bail!("POST /moto-api/reset answered {status}: {}", lossy(&body)),
        }
    }

    /// Everything moto tracks, as `GET /moto-api/data.json` shows it:
    /// `{service: {model: [instance, ...]}}`.
    pub fn model_data(&self) -> anyhow::Result<Value> {
        match self.http("GET", "/moto-api/data.json", Duration::from_secs(10))? {
            (200, body) => serde_json::from_slice(&body).context("/moto-api/data.json is not JSON"),
            (status, body) => bail!(
                "GET /moto-api/data.json answered {status}: {}",
                lossy(&body)
            ),
        }
    }

    /// The messages published to SNS topics, in publishing order per topic,
    /// from `GET /moto-api/data.json`: a JSON array of
    /// `{"topic_arn", "message_id", "message", "subject", "message_attributes", "group_id"}`
    /// (`subject`, `message_attributes` and `group_id` may be null).
    pub fn published_sns(&self) -> anyhow::Result<Value> {
        let data = self.model_data()?;
        let mut out = Vec::new();
        for topic in data["sns"]["Topic"].as_array().into_iter().flatten() {
            for sent in topic["sent_notifications"].as_array().into_iter().flatten() {
                out.push(serde_json::json!({
                    "topic_arn": topic["arn"],
                    "message_id": sent[0],
                    "message": sent[1],
                    "subject": sent[2],
                    "message_attributes": sent[3],
                    "group_id": sent[4],
                }));
            }
        }
        Ok(Value::Array(out))
    }

    /// One plain HTTP/1.1 request to the server (no body), answered with
    /// `(status, body)`; bounded by `timeout` for the connect and each read.
    fn http(&self, method: &str, path: &str, timeout: Duration) -> anyhow::Result<(u16, Vec<u8>)> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        parse_response(&response)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Runs on a panicking test too (tests unwind). Killing an already
        // exited child is an error we do not care about; `wait` reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum StartError {
    /// moto could not bind the port: worth another port.
    PortTaken(anyhow::Error),
    Failed(anyhow::Error),
}

/// The python to run moto with: `MOTO_PYTHON`; else the workspace's
/// `.venv/bin/python` when there is one (`make test` makes it, with the
/// pinned moto); else `python3`.
pub fn python() -> String {
    if let Ok(python) = std::env::var("MOTO_PYTHON") {
        return python;
    }
    let venv = crate::workspace_root().join(".venv/bin/python");
    if venv.exists() {
        return venv.to_string_lossy().into_owned();
    }
    "python3".to_owned()
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The last 40 lines (at most 8 KiB) of a log file.
fn log_tail(file: &mut File) -> String {
    const MAX: u64 = 8 * 1024;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if file.seek(SeekFrom::Start(len.saturating_sub(MAX))).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    let _ = file.take(MAX).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn lossy(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars().take(500).collect()
}

/// Splits a raw HTTP/1.x response into status and body, undoing chunked
/// transfer encoding.
fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("incomplete HTTP response ({} bytes)", raw.len()))?;
    let head = std::str::from_utf8(&raw[..split]).context("HTTP head is not UTF-8")?;
    let body = &raw[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("no status in {head:?}"))?;
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("bad chunk"))?;
        let size_text = std::str::from_utf8(&rest[..end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Ok((status, out));
        }
        if rest.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
