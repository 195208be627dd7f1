//! A fault-injecting SDK interceptor: counts the requests each operation sends
//! and makes chosen attempts fail, either before the request leaves the
//! client (the server never sees it) or after the server has answered (the
//! server committed it, the client is told the connection failed).
//!
//! ```ignore
//! let faults = Faults::new();
//! let ddb = moto.dynamodb_with(faults.clone());
//! faults.lose_response("TransactWriteItems", 2); // the 2nd attempt from now
//! ```
//!
//! # Injected errors and the SDK's retries
//!
//! An injected fault reaches the caller as `SdkError::DispatchFailure` whose
//! source chain holds an [`InjectedFault`] ([`injected`] finds it), the same
//! shape as a real connection failure. What the SDK's retry loop does with it
//! is chosen per rule, never left to chance:
//!
//! - [`Faults::fail_before_send`] and [`Faults::lose_response`] raise a
//!   *non-retryable* connector error (`ConnectorError::other(_, None)`): the
//!   standard retry classifiers (modeled-retryable, transient, HTTP status)
//!   all say "no action", so the SDK makes no further attempt and the caller
//!   sees the error. One call, one attempt, one error.
//! - [`Faults::fail_n_times`] raises a *retryable* I/O connector error
//!   (`ConnectorError::io`), which the SDK's transient-error classifier
//!   retries, exactly as it retries a real dropped connection. With the
//!   clients of [`crate::moto::Moto`] (3 attempts) up to 2 such faults in a
//!   row are absorbed by the SDK: the call succeeds, and only the attempt
//!   counts show the retries. With [`When::AfterSend`] every one of those
//!   attempts reached the server, so the retry *re-sends* a request the
//!   server already applied (the SDK reuses the `ClientRequestToken` it
//!   generated for `TransactWriteItems`; real DynamoDB answers such a repeat
//!   as a success without applying it again, moto ignores the token).
//!
//! For the record, an error returned from an interceptor hook as such (an
//! `OrchestratorError` of kind "interceptor") is not retried by any of the
//! SDK's classifiers either; the rules here rewrite it into a connector error
//! in `modify_before_attempt_completion` so that its retryability is explicit
//! and it looks to the caller like the network failure it stands for.
//!
//! Counting happens in `read_before_transmit`, the last hook before the HTTP
//! client: [`Faults::count`] is the number of requests handed to the
//! transport (retries included, attempts failed before sending excluded).

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{Metadata, OrchestratorError};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// Where in an attempt a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Before the request is handed to the HTTP client: the server never sees it.
    BeforeSend,
    /// After the server has answered (and so committed whatever it commits):
    /// the answer is thrown away and the client gets a connection error.
    AfterSend,
}

/// The error an injected fault raises (found in the source chain of the
/// `SdkError` the caller gets; see [`injected`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFault {
    /// The operation, e.g. `TransactWriteItems`.
    pub op: String,
    /// Where the attempt failed.
    pub when: When,
    /// Whether the SDK's retry loop may retry it.
    pub retryable: bool,
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.when {
            When::BeforeSend => "failed before the request was sent",
            When::AfterSend => "response lost after the server answered",
        };
        let retry = if self.retryable {
            "retryable"
        } else {
            "not retryable"
        };
        write!(f, "injected fault: {} {what} ({retry})", self.op)
    }
}

impl Error for InjectedFault {}

/// The injected fault in an error's source chain, if there is one.
pub fn injected<'e>(err: &'e (dyn Error + 'static)) -> Option<&'e InjectedFault> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(fault) = err.downcast_ref::<InjectedFault>() {
            return Some(fault);
        }
        next = err.source();
    }
    None
}

#[derive(Debug)]
struct Rule {
    op: String,
    /// Attempts of `op` to let through before the rule fires.
    skip: u32,
    /// Attempts the rule still fails once it fires.
    left: u32,
    when: When,
    retryable: bool,
}

#[derive(Debug, Default)]
struct State {
    counts: BTreeMap<String, u64>,
    rules: Vec<Rule>,
    injected: Vec<InjectedFault>,
}

/// The fault an attempt carries from `read_before_transmit` to
/// `modify_before_attempt_completion` (kept in the operation's config bag,
/// so concurrent calls on one client do not mix up their attempts).
#[derive(Debug, Clone)]
struct Armed(Option<InjectedFault>);

impl Storable for Armed {
    type Storer = StoreReplace<Self>;
}

/// A cloneable handle on one fault injector: attach a clone to a client
/// (`Moto::dynamodb_with(faults.clone())`), arm rules and read counts
/// through another. Every rule fires once (for [`Faults::fail_n_times`],
/// `n` times in a row) and is then gone.
///
/// Rules count *attempts* of their operation from the moment they are armed,
/// retries included. When two rules are due on the same attempt, the one
/// armed first fires and the other on the next attempt.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

impl Faults {
    /// A fault injector with no rules and zero counts.
    pub fn new() -> Self {
        Faults::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves usable state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn arm(&self, op: &str, nth: u32, left: u32, when: When, retryable: bool) {
        assert!(nth >= 1, "attempts are counted from 1");
        self.state().rules.push(Rule {
            op: op.to_owned(),
            skip: nth - 1,
            left,
            when,
            retryable,
        });
    }

    /// The `nth` attempt of `op` from now (1 = the next one) fails before it
    /// is sent; the server never sees it. Not retried by the SDK.
    pub fn fail_before_send(&self, op: &str, nth: u32) {
        self.arm(op, nth, 1, When::BeforeSend, false);
    }

    /// The `nth` attempt of `op` from now reaches the server, which applies it;
    /// then its response is lost and the client gets a connection error. Not
    /// retried by the SDK.
    pub fn lose_response(&self, op: &str, nth: u32) {
        self.arm(op, nth, 1, When::AfterSend, false);
    }

    /// The next `n` attempts of `op` fail at `when` with a retryable I/O
    /// error, which the SDK retries like a real dropped connection (see the
    /// module documentation).
    pub fn fail_n_times(&self, op: &str, n: u32, when: When) {
        if n > 0 {
            self.arm(op, 1, n, when, true);
        }
    }

    /// Requests of `op` sent to the server (retries included).
    pub fn count(&self, op: &str) -> u64 {
        self.state().counts.get(op).copied().unwrap_or(0)
    }

    /// Requests sent to the server, all operations.
    pub fn total(&self) -> u64 {
        self.state().counts.values().sum()
    }

    /// Requests sent per operation.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.state().counts.clone()
    }

    /// Sets every count back to zero (rules stay armed).
    pub fn reset_counts(&self) {
        self.state().counts.clear();
    }

    /// The faults injected so far, in order.
    pub fn injected(&self) -> Vec<InjectedFault> {
        self.state().injected.clone()
    }

    /// Rules armed that have not (fully) fired yet: a test should usually
    /// end with none, or a rule on a misspelled operation goes unnoticed.
    pub fn pending(&self) -> usize {
        self.state().rules.len()
    }

    /// Disarms every rule.
    pub fn clear_rules(&self) {
        self.state().rules.clear();
    }

    /// Counts one attempt of `op` about to be sent and returns the fault it
    /// is to suffer, if any.
    fn on_attempt(&self, op: &str) -> Option<InjectedFault> {
        let mut state = self.state();
        let mut fault = None;
        let mut spent = None;
        for (i, rule) in state.rules.iter_mut().enumerate() {
            if rule.op != op {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
            } else if fault.is_none() {
                rule.left -= 1;
                if rule.left == 0 {
                    spent = Some(i);
                }
                fault = Some(InjectedFault {
                    op: op.to_owned(),
                    when: rule.when,
                    retryable: rule.retryable,
                });
            }
        }
        if let Some(i) = spent {
            state.rules.remove(i);
        }
        if let Some(fault) = &fault {
            state.injected.push(fault.clone());
        }
        if fault.as_ref().map(|f| f.when) != Some(When::BeforeSend) {
            *state.counts.entry(op.to_owned()).or_default() += 1;
        }
        fault
    }
}

impl Intercept for Faults {
    fn name(&self) -> &'static str {
        "ddb-audit-tests Faults"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Armed(None));
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_owned())
            .unwrap_or_else(|| "<unknown>".to_owned());
        let fault = self.on_attempt(&op);
        cfg.interceptor_state().store_put(Armed(fault.clone()));
        match fault {
            // Stops the attempt here; rewritten below.
            Some(fault) if fault.when == When::BeforeSend => Err(Box::new(fault)),
            _ => Ok(()),
        }
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(fault) = cfg.load::<Armed>().and_then(|armed| armed.0.clone()) else {
            return Ok(());
        };
        cfg.interceptor_state().store_put(Armed(None));
        let retryable = fault.retryable;
        let when = fault.when;
        let source: BoxError = Box::new(fault);
        let error = if retryable {
            ConnectorError::io(source)
        } else {
            ConnectorError::other(source, None)
        };
        let error = match when {
            When::BeforeSend => error.never_connected(),
            When::AfterSend => error,
        };
        context
            .inner_mut()
            .fail(OrchestratorError::connector(error));
        Ok(())
    }
}
