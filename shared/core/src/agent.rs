//! User-agent families: the SDK or tool behind a call, with its major version
//! (`aws-sdk-java/2.x`, `Boto3/1.x`, `aws-cli/2.x`, `console`), which is what
//! helps a person recognise an application. The full user-agent string is
//! never kept: it is long, varies per host and can carry host details.

use std::borrow::Cow;
use std::cell::RefCell;

use hashbrown::{HashMap, HashSet};

/// How many user agents each thread remembers the family of.
const MAX_KNOWN: usize = 1024;
/// Longer user agents are reduced afresh each time.
const MAX_KNOWN_LEN: usize = 512;

/// The families already worked out, per thread: a trail repeats a few
/// hundred user agents millions of times, and working one out is the
/// costliest step of attributing a call. The families themselves are kept
/// for the life of the process, at most [`MAX_KNOWN`] per thread, which is
/// what lets a call borrow its family instead of allocating it.
#[derive(Default)]
struct Known {
    by_agent: HashMap<Box<str>, &'static str>,
    families: HashSet<&'static str>,
}

thread_local! {
    static KNOWN: RefCell<Known> = RefCell::new(Known::default());
}

/// Reduces a `userAgent` to its family.
pub fn family(user_agent: Option<&str>) -> Cow<'static, str> {
    let Some(ua) = user_agent.filter(|ua| ua.len() <= MAX_KNOWN_LEN) else {
        return family_of(user_agent);
    };
    KNOWN.with(|known| {
        let Ok(mut known) = known.try_borrow_mut() else {
            return family_of(user_agent);
        };
        if let Some(&family) = known.by_agent.get(ua) {
            return Cow::Borrowed(family);
        }
        let family = family_of(user_agent);
        if known.by_agent.len() >= MAX_KNOWN {
            return family;
        }
        let kept: &'static str = match family {
            Cow::Borrowed(f) => f,
            Cow::Owned(f) => match known.families.get(f.as_str()) {
                Some(&f) => f,
                None => {
                    let f: &'static str = Box::leak(f.into_boxed_str());
                    known.families.insert(f);
                    f
                }
            },
        };
        known.by_agent.insert(ua.into(), kept);
        Cow::Borrowed(kept)
    })
}

/// [`family`], worked out.
fn family_of(user_agent: Option<&str>) -> Cow<'static, str> {
    let Some(ua) = user_agent.map(str::trim).filter(|ua| !ua.is_empty()) else {
        return Cow::Borrowed("unknown");
    };
    let ua = ua.trim_matches(|c| c == '[' || c == ']');
    if ua.starts_with("Mozilla/") {
        return Cow::Borrowed("console");
    }
    let tokens = || {
        ua.split_whitespace()
            .map(|t| t.trim_matches(|c| c == '[' || c == ']'))
    };
    // Tools first: they wrap an SDK and say more about the application.
    for tool in ["Terraform", "aws-cli", "Boto3", "aws-chalice", "AWS-CDK"] {
        if let Some(t) = tokens().find(|t| product(t).eq_ignore_ascii_case(tool)) {
            return with_major(t);
        }
    }
    if let Some(t) = tokens().find(|t| product(t).starts_with("aws-sdk-")) {
        return with_major(t);
    }
    if let Some(t) = tokens().find(|t| product(t).eq_ignore_ascii_case("Botocore")) {
        return with_major(t);
    }
    // AWS services put their host name in the user agent.
    if ua.ends_with(".amazonaws.com") && !ua.contains(char::is_whitespace) {
        return Cow::Owned(truncate(ua, 64).to_owned());
    }
    match tokens().next() {
        Some(first) => with_major(first),
        None => Cow::Borrowed("unknown"),
    }
}

fn product(token: &str) -> &str {
    token.split('/').next().unwrap_or(token)
}

fn with_major(token: &str) -> Cow<'static, str> {
    let mut parts = token.splitn(2, '/');
    let name = truncate(parts.next().unwrap_or_default(), 48);
    let major: String = parts
        .next()
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_digit)
        .take(6)
        .collect();
    if major.is_empty() {
        Cow::Owned(name.to_owned())
    } else {
        Cow::Owned(format!("{name}/{major}.x"))
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_of_common_user_agents() {
        let cases = [
            ("Boto3/1.28.79 md/Botocore#1.31.79 ua/2.0 os/linux Botocore/1.31.79 Resource", "Boto3/1.x"),
            ("aws-sdk-java/2.20.89 Linux/4.18 Java/11.0.20.1 vendor/IBM_Corporation", "aws-sdk-java/2.x"),
            ("aws-cli/1.19.7 Python/3.6.13 Linux/4.9.230 botocore/1.20.7", "aws-cli/1.x"),
            ("aws-sdk-go-v2/1.21.0 os/linux lang/go#1.21 md/GOOS#linux api/dynamodb#1.21.5", "aws-sdk-go-v2/1.x"),
            ("aws-sdk-rust/1.3.0 os/linux lang/rust/1.80.0", "aws-sdk-rust/1.x"),
            ("APN/1.0 HashiCorp/1.0 Terraform/1.5.7 (+https://www.terraform.io) terraform-provider-aws/5.0.0 aws-sdk-go/1.44", "Terraform/1.x"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36", "console"),
            ("[aws-sdk-java/1.12.500 Linux/5.10]", "aws-sdk-java/1.x"),
            ("glue.amazonaws.com", "glue.amazonaws.com"),
            ("", "unknown"),
        ];
        for (ua, want) in cases {
            assert_eq!(family(Some(ua)), want, "{ua}");
        }
        assert_eq!(family(None), "unknown");
        // Asked again, the same answers, borrowed.
        for (ua, want) in cases {
            assert!(
                matches!(family(Some(ua)), Cow::Borrowed(f) if f == want),
                "{ua}"
            );
        }
    }
}
