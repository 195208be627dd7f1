//! A fault-injecting HTTP proxy on 127.0.0.1 between the AWS SDK and moto,
//! for the tests that need faults the SDK's own interceptors cannot fake:
//! throttling and 5xx answers the SDK classifies and retries itself,
//! connections dropped after the server committed a request, connections
//! cut in the middle of a request, and the endpoint going away and coming
//! back on the same port.
//!
//! Each accepted connection carries one request (the proxy asks moto to
//! close after answering and says `Connection: close` to the client), which
//! keeps the framing simple and lets every request meet its own fault. For
//! each request a seeded random number generator picks one [`Fault`] by the
//! configured rates; which request gets which fault depends on the order in
//! which concurrent requests arrive, the rates and the seed do not.
//!
//! Only loopback addresses are used: the proxy binds 127.0.0.1 and forwards
//! to a port on 127.0.0.1. Every read and write is bounded by a timeout.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// Longest a request or response head may be.
const MAX_HEAD: usize = 64 * 1024;
/// Longest a request or response body may be (the tests' are far smaller).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Bound on every read and write of a forwarded request.
const IO_TIMEOUT: Duration = Duration::from_secs(120);

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Forwarded, and the answer returned: no fault.
    None,
    /// Answered without forwarding: DynamoDB `ThrottlingException` (400) or
    /// S3 `SlowDown` (503).
    Throttle,
    /// DynamoDB `ProvisionedThroughputExceededException` (400), not forwarded
    /// (S3 requests get `SlowDown` instead).
    ThroughputExceeded,
    /// Answered without forwarding: HTTP 500 (DynamoDB `InternalServerError`,
    /// S3 `InternalError`).
    ServerError,
    /// Answered without forwarding: HTTP 503 (`ServiceUnavailable`).
    Unavailable,
    /// Forwarded and committed by the server, then the connection to the
    /// client is closed before any byte of the answer: the client cannot
    /// tell whether the request was applied.
    DropAfterCommit,
    /// The connection is closed once the request head has arrived, before
    /// the body is read; nothing is forwarded.
    CutMidRequest,
}

impl Fault {
    /// Every fault, the no-fault case first.
    pub const ALL: [Fault; 7] = [
        Fault::None,
        Fault::Throttle,
        Fault::ThroughputExceeded,
        Fault::ServerError,
        Fault::Unavailable,
        Fault::DropAfterCommit,
        Fault::CutMidRequest,
    ];

    /// A short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Throttle => "throttle",
            Fault::ThroughputExceeded => "throughput_exceeded",
            Fault::ServerError => "http_500",
            Fault::Unavailable => "http_503",
            Fault::DropAfterCommit => "dropped_after_commit",
            Fault::CutMidRequest => "cut_mid_request",
        }
    }
}

/// How often each fault strikes: a probability per request for each.
/// Their sum must be at most 1; the rest of the requests pass untouched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// [`Fault::Throttle`].
    pub throttle: f64,
    /// [`Fault::ThroughputExceeded`].
    pub throughput_exceeded: f64,
    /// [`Fault::ServerError`].
    pub server_error: f64,
    /// [`Fault::Unavailable`].
    pub unavailable: f64,
    /// [`Fault::DropAfterCommit`].
    pub drop_after_commit: f64,
    /// [`Fault::CutMidRequest`].
    pub cut_mid_request: f64,
}

impl Rates {
    /// No faults at all.
    pub const NONE: Rates = Rates {
        throttle: 0.0,
        throughput_exceeded: 0.0,
        server_error: 0.0,
        unavailable: 0.0,
        drop_after_commit: 0.0,
        cut_mid_request: 0.0,
    };

    fn pick(&self, roll: f64) -> Fault {
        let mut bound = 0.0;
        for (rate, fault) in [
            (self.throttle, Fault::Throttle),
            (self.throughput_exceeded, Fault::ThroughputExceeded),
            (self.server_error, Fault::ServerError),
            (self.unavailable, Fault::Unavailable),
            (self.drop_after_commit, Fault::DropAfterCommit),
            (self.cut_mid_request, Fault::CutMidRequest),
        ] {
            bound += rate;
            if roll < bound {
                return fault;
            }
        }
        Fault::None
    }
}

#[derive(Debug)]
struct State {
    rng: fastrand::Rng,
    rates: Rates,
    /// Requests per fault (including [`Fault::None`]).
    faults: BTreeMap<Fault, u64>,
    /// Requests per DynamoDB operation (`X-Amz-Target`) or `s3`.
    operations: BTreeMap<String, u64>,
    /// Connections open when the proxy was restarted, cut by it.
    cut_by_restart: u64,
    restarts: u64,
    connections: Vec<AbortHandle>,
}

/// The proxy: a listener on 127.0.0.1 forwarding to `upstream`. Stopped when
/// dropped.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    upstream: u16,
    state: Arc<Mutex<State>>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

impl Proxy {
    /// Starts a proxy on a free port of 127.0.0.1 forwarding to
    /// 127.0.0.1:`upstream`, with no faults until [`Proxy::set_rates`].
    /// Must be called inside a tokio runtime.
    pub async fn start(upstream: u16, seed: u64) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the proxy on 127.0.0.1")?;
        let port = listener.local_addr()?.port();
        let proxy = Proxy {
            port,
            upstream,
            state: Arc::new(Mutex::new(State {
                rng: fastrand::Rng::with_seed(seed),
                rates: Rates::NONE,
                faults: BTreeMap::new(),
                operations: BTreeMap::new(),
                cut_by_restart: 0,
                restarts: 0,
                connections: Vec::new(),
            })),
            acceptor: Mutex::new(None),
        };
        proxy.serve(listener);
        Ok(proxy)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn serve(&self, listener: TcpListener) {
        let state = self.state.clone();
        let upstream = self.upstream;
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let state_for_task = state.clone();
                let task = tokio::spawn(async move {
                    // A failed exchange is what the client sees as a broken
                    // connection; nothing to report here.
                    let _ = exchange(client, upstream, &state_for_task).await;
                });
                let mut state = lock(&state);
                state.connections.retain(|c| !c.is_finished());
                state.connections.push(task.abort_handle());
            }
        });
        *self.acceptor.lock().unwrap_or_else(|e| e.into_inner()) = Some(acceptor);
    }

    /// `http://127.0.0.1:PORT`, the endpoint to give the SDK.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Changes the fault rates from the next request on.
    pub fn set_rates(&self, rates: Rates) {
        let total = rates.throttle
            + rates.throughput_exceeded
            + rates.server_error
            + rates.unavailable
            + rates.drop_after_commit
            + rates.cut_mid_request;
        assert!(
            (0.0..=1.0).contains(&total),
            "fault rates add up to {total}"
        );
        self.state().rates = rates;
    }

    /// Requests seen per fault, [`Fault::None`] included.
    pub fn faults(&self) -> BTreeMap<Fault, u64> {
        self.state().faults.clone()
    }

    /// Requests seen per operation (the DynamoDB operation, or `s3`).
    pub fn operations(&self) -> BTreeMap<String, u64> {
        self.state().operations.clone()
    }

    /// Requests seen, all faults.
    pub fn requests(&self) -> u64 {
        self.state().faults.values().sum()
    }

    /// Times [`Proxy::restart`] ran, and the connections it cut.
    pub fn restarts(&self) -> (u64, u64) {
        let state = self.state();
        (state.restarts, state.cut_by_restart)
    }

    /// Takes the endpoint away, as a server going down would: stops
    /// listening (new connections are refused) and cuts every open
    /// connection, forwarded or not, then after `down_for` listens again on
    /// the same port.
    pub async fn restart(&self, down_for: Duration) -> anyhow::Result<()> {
        let acceptor = self
            .acceptor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(acceptor) = acceptor {
            acceptor.abort();
            // The listener is dropped with the task; wait until it is.
            let _ = acceptor.await;
        }
        {
            let mut state = self.state();
            let open: Vec<AbortHandle> = state.connections.drain(..).collect();
            for connection in &open {
                if !connection.is_finished() {
                    state.cut_by_restart += 1;
                }
                connection.abort();
            }
            state.restarts += 1;
        }
        tokio::time::sleep(down_for).await;
        // The old socket may linger a moment; a bounded number of tries.
        let mut last = None;
        for _ in 0..50 {
            match TcpListener::bind((Ipv4Addr::LOCALHOST, self.port)).await {
                Ok(listener) => {
                    self.serve(listener);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!(
            "could not listen on 127.0.0.1:{} again: {last:?}",
            self.port
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(acceptor) = self
            .acceptor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            acceptor.abort();
        }
        for connection in self.state().connections.drain(..) {
            connection.abort();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// One request on one client connection.
async fn exchange(
    mut client: TcpStream,
    upstream: u16,
    state: &Mutex<State>,
) -> anyhow::Result<()> {
    let (head, mut rest) = timed(read_head(&mut client)).await??;
    let target = header(&head, "x-amz-target")
        .map(|t| t.rsplit('.').next().unwrap_or(t.as_str()).to_owned());
    let dynamodb = target.is_some();
    let fault = {
        let mut state = lock(state);
        let roll = state.rng.f64();
        let fault = state.rates.pick(roll);
        *state.faults.entry(fault).or_default() += 1;
        let op = target.unwrap_or_else(|| "s3".to_owned());
        *state.operations.entry(op).or_default() += 1;
        fault
    };
    if fault == Fault::CutMidRequest {
        // Closing with unread bytes makes the kernel reset the connection.
        drop(client);
        return Ok(());
    }
    let body = timed(read_body(&mut client, &head, &mut rest)).await??;
    if let Some(answer) = canned(fault, dynamodb) {
        timed(client.write_all(&answer)).await??;
        timed(client.shutdown()).await??;
        return Ok(());
    }
    let response = timed(forward(upstream, &head, &body)).await??;
    if fault == Fault::DropAfterCommit {
        drop(client);
        return Ok(());
    }
    timed(client.write_all(&response)).await??;
    timed(client.shutdown()).await??;
    Ok(())
}

async fn timed<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    tokio::time::timeout(IO_TIMEOUT, f)
        .await
        .context("proxy I/O timed out")
}

/// Reads up to the end of the head; returns the head (without the blank
/// line) and the bytes read past it.
async fn read_head(stream: &mut TcpStream) -> anyhow::Result<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(buf[..end].to_vec()).context("head is not UTF-8")?;
            return Ok((head, buf[end + 4..].to_vec()));
        }
        if buf.len() > MAX_HEAD {
            bail!("head over {MAX_HEAD} bytes");
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed before the end of the head");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// Reads the request body as its head frames it (`Content-Length` or
/// chunked), returning it as it was sent.
async fn read_body(
    stream: &mut TcpStream,
    head: &str,
    rest: &mut Vec<u8>,
) -> anyhow::Result<Vec<u8>> {
    let chunked = header(head, "transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let mut chunk = [0u8; 8192];
    if chunked {
        // Read until the last chunk and the blank line after it have
        // arrived. Recognising that by the last bytes is enough for the
        // requests the tests send (DynamoDB JSON with a Content-Length, S3
        // reads without a body); it is not a general chunked-body parser.
        loop {
            if rest.ends_with(b"0\r\n\r\n") {
                return Ok(std::mem::take(rest));
            }
            if rest.len() > MAX_BODY {
                bail!("body over {MAX_BODY} bytes");
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed inside a chunked body");
            }
            rest.extend_from_slice(&chunk[..n]);
        }
    }
    let length: usize = match header(head, "content-length") {
        Some(length) => length.parse().context("bad Content-Length")?,
        None => 0,
    };
    if length > MAX_BODY {
        bail!("body over {MAX_BODY} bytes");
    }
    while rest.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed inside the body");
        }
        rest.extend_from_slice(&chunk[..n]);
    }
    rest.truncate(length);
    Ok(std::mem::take(rest))
}

/// Sends the request to moto on a fresh connection, asking it to close
/// after answering, and returns the whole answer with `Connection: close`.
async fn forward(upstream: u16, head: &str, body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut server = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, upstream))).await?;
    let mut request = String::with_capacity(head.len() + 32);
    for line in head.split("\r\n") {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:") || lower.starts_with("keep-alive:") {
            continue;
        }
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("Connection: close\r\n\r\n");
    server.write_all(request.as_bytes()).await?;
    server.write_all(body).await?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).await?;
    let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!("moto's answer has no head ({} bytes)", response.len());
    };
    let head = std::str::from_utf8(&response[..end]).context("answer head is not UTF-8")?;
    let mut out = Vec::with_capacity(response.len() + 32);
    for line in head.split("\r\n") {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:") || lower.starts_with("keep-alive:") {
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&response[end + 4..]);
    Ok(out)
}

/// The answer a faulty server gives instead of forwarding, if the fault is one.
fn canned(fault: Fault, dynamodb: bool) -> Option<Vec<u8>> {
    let (status, reason, code, message) = match (fault, dynamodb) {
        (Fault::Throttle, true) => (
            400,
            "Bad Request",
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
        ),
        (Fault::ThroughputExceeded, true) => (
            400,
            "Bad Request",
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded.",
        ),
        (Fault::Throttle | Fault::ThroughputExceeded, false) => (
            503,
            "Slow Down",
            "SlowDown",
            "Please reduce your request rate.",
        ),
        (Fault::ServerError, true) => (
            500,
            "Internal Server Error",
            "InternalServerError",
            "Internal server error",
        ),
        (Fault::ServerError, false) => (
            500,
            "Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        (Fault::Unavailable, _) => (
            503,
            "Service Unavailable",
            "ServiceUnavailable",
            "Service is unavailable. Try again later.",
        ),
        _ => return None,
    };
    let (content_type, body) = if dynamodb {
        (
            "application/x-amz-json-1.0",
            format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#
            ),
        )
    } else {
        (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>PROXY</RequestId></Error>"
            ),
        )
    };
    Some(
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-RequestId: proxy-fault\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}
