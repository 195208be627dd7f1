//! Who made a call: the application identity behind a CloudTrail
//! `userIdentity`, stable across sessions for machines and per person for
//! people.

use std::borrow::Cow;
use std::fmt;

use globset::GlobSet;

use crate::record::{RecordView, UserIdentity};
use crate::Error;

/// The kind of identity, named as CloudTrail names `userIdentity.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallerType {
    /// A role session (`AssumedRole`).
    AssumedRole,
    /// An IAM user.
    IamUser,
    /// The account root user.
    Root,
    /// A federated user (`GetFederationToken`).
    FederatedUser,
    /// An AWS service acting with its own credentials.
    AwsService,
    /// Another AWS account.
    AwsAccount,
    /// A person signed in through IAM Identity Center (`IdentityCenterUser`).
    IdentityCenterUser,
    /// A type ddb-audit does not know, or none at all.
    Unknown,
}

impl CallerType {
    /// The name CloudTrail uses, or `Unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallerType::AssumedRole => "AssumedRole",
            CallerType::IamUser => "IAMUser",
            CallerType::Root => "Root",
            CallerType::FederatedUser => "FederatedUser",
            CallerType::AwsService => "AWSService",
            CallerType::AwsAccount => "AWSAccount",
            CallerType::IdentityCenterUser => "IdentityCenterUser",
            CallerType::Unknown => "Unknown",
        }
    }

    /// The inverse of [`CallerType::as_str`]; anything else is `Unknown`.
    pub fn parse(text: &str) -> Self {
        match text {
            "AssumedRole" => CallerType::AssumedRole,
            "IAMUser" => CallerType::IamUser,
            "Root" => CallerType::Root,
            "FederatedUser" => CallerType::FederatedUser,
            "AWSService" => CallerType::AwsService,
            "AWSAccount" => CallerType::AwsAccount,
            "IdentityCenterUser" => CallerType::IdentityCenterUser,
            _ => CallerType::Unknown,
        }
    }
}

impl fmt::Display for CallerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A caller: the stable string a rollup is keyed by, and what kind it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller<'a> {
    /// The caller string (DESIGN.md section 3): a role ARN, a user ARN, an
    /// assumed-role ARN with session name for people, `service:...`, ...
    pub id: Cow<'a, str>,
    /// The identity type.
    pub kind: CallerType,
    /// True when the caller is a person rather than an application.
    pub person: bool,
}

/// Patterns that mark role sessions and IAM users as people: each session of
/// a matching role is kept apart as its own caller instead of being folded
/// into the role, and a matching IAM user is flagged a person.
///
/// Roles named `AWSReservedSSO_*`, sessions from the console and IAM users
/// who sign in to the console are people without any configuration; a
/// service-linked role never is.
#[derive(Debug, Clone, Default)]
pub struct HumanRoles {
    set: Option<GlobSet>,
}

impl HumanRoles {
    /// Builds the matcher from glob patterns (`*` matches any text, `/`
    /// included). A pattern is matched against the role (or IAM user) name
    /// and against its ARN, so `Admin*`, `arn:aws:iam::*:role/people/*` and
    /// `arn:aws:iam::*:user/staff/*` all work.
    pub fn new<I, S>(patterns: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let set = crate::globs::glob_set(patterns, "human-role pattern")?;
        Ok(HumanRoles { set })
    }

    fn matches(&self, name: &str, arn: &str) -> bool {
        self.set
            .as_ref()
            .is_some_and(|set| set.is_match(name) || set.is_match(arn))
    }
}

/// User agents CloudTrail wrote for console sessions before
/// `sessionCredentialFromConsole` existed (and still writes for some calls).
/// A bare browser user agent is not enough on its own: a web application
/// calling DynamoDB from a browser with Cognito credentials has one too.
const CONSOLE_USER_AGENTS: [&str; 3] = [
    "console.aws.amazon.com",
    "console.amazonaws.com",
    "signin.amazonaws.com",
];

/// True when the record shows a person signed in to the AWS console:
/// `sessionCredentialFromConsole`, `invokedBy: signin.amazonaws.com`, or a
/// console user agent of the kind older records carry.
fn console_sign_in(record: &RecordView<'_>, identity: &UserIdentity<'_>) -> bool {
    if record.session_credential_from_console.is_some_and(|f| f.0) {
        return true;
    }
    if text(&identity.invoked_by).is_some_and(|by| by.eq_ignore_ascii_case("signin.amazonaws.com"))
    {
        return true;
    }
    record.user_agent.as_ref().is_some_and(|ua| {
        let ua = ua.as_str().trim().trim_matches(|c| c == '[' || c == ']');
        CONSOLE_USER_AGENTS
            .iter()
            .any(|console| ua.eq_ignore_ascii_case(console))
    })
}

/// The AWS service a service-linked role serves, from its ARN
/// (`arn:aws:iam::A:role/aws-service-role/SERVICE/AWSServiceRoleFor...`):
/// `Some("")` for a role named `AWSServiceRoleFor*` whose path (and so its
/// service) is not known, as when the role ARN was derived from a session
/// ARN; `None` for any other role.
pub fn service_linked_role_service(role_arn: &str) -> Option<&str> {
    let (_, resource) = role_arn.split_once(":role/")?;
    if let Some(rest) = resource.strip_prefix("aws-service-role/") {
        let (service, _name) = rest.split_once('/')?;
        return Some(service);
    }
    let name = resource.rsplit('/').next().unwrap_or(resource);
    name.starts_with("AWSServiceRoleFor").then_some("")
}

/// Names the caller of a record.
pub fn identify<'a>(record: &'a RecordView<'a>, human_roles: &HumanRoles) -> Caller<'a> {
    let Some(identity) = record.user_identity.as_ref() else {
        return unknown(None, record);
    };
    let kind = identity
        .kind
        .as_ref()
        .map_or(CallerType::Unknown, |t| CallerType::parse(t.as_str()));
    let arn = identity
        .arn
        .as_ref()
        .map(|a| a.as_str())
        .filter(|a| !a.is_empty());
    let from_console = console_sign_in(record, identity);
    let person_if = |person: bool, id: Cow<'a, str>| Caller { id, kind, person };
    match kind {
        CallerType::AssumedRole => assumed_role(identity, arn, from_console, human_roles)
            .unwrap_or_else(|| unknown(Some(identity), record)),
        CallerType::IamUser => match arn {
            Some(arn) => {
                let name = arn.rsplit('/').next().unwrap_or(arn);
                let person = from_console || human_roles.matches(name, arn);
                person_if(person, Cow::Borrowed(arn))
            }
            None => unknown(Some(identity), record),
        },
        CallerType::Root | CallerType::FederatedUser => match arn {
            Some(arn) => person_if(from_console, Cow::Borrowed(arn)),
            None => unknown(Some(identity), record),
        },
        CallerType::AwsService => match text(&identity.invoked_by) {
            Some(service) => person_if(false, Cow::Owned(format!("service:{service}"))),
            None => unknown(Some(identity), record),
        },
        CallerType::AwsAccount => match text(&identity.account_id) {
            Some(account) => person_if(false, Cow::Owned(format!("account:{account}"))),
            None => unknown(Some(identity), record),
        },
        CallerType::IdentityCenterUser => {
            match identity
                .on_behalf_of
                .as_ref()
                .and_then(|o| text(&o.user_id))
            {
                Some(user) => person_if(true, Cow::Owned(format!("identitycenter:{user}"))),
                None => unknown(Some(identity), record),
            }
        }
        CallerType::Unknown => unknown(Some(identity), record),
    }
}

/// A caller string as a person reads it in a narrow table or a notice. The
/// caller string itself (the full ARN) stays the key, in JSON and CSV and in
/// the summary table; this is only a shorter way of showing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerName<'a> {
    /// The short name: a role or IAM user name, a person's session name
    /// (`alice@example.com`), the AWS service (`glue.amazonaws.com`), the id
    /// after `identitycenter:` or `account:` (the caller type says which), or
    /// the whole caller string when it has no shorter form.
    pub short: &'a str,
    /// The account in the caller's ARN, when it is one.
    pub account: Option<&'a str>,
    /// For a person in a role session: the role, or for an IAM Identity
    /// Center role (`AWSReservedSSO_DataEngineer_5d2c...`) its permission set
    /// (`DataEngineer`).
    pub role: Option<&'a str>,
    /// For a service-linked role: the AWS service it serves (`""` when the
    /// role's path, and so the service, is not known).
    pub service: Option<&'a str>,
}

/// Reads a caller string (see [`identify`]) back into its parts for people.
pub fn caller_name<'c>(caller: &'c str) -> CallerName<'c> {
    let whole = CallerName {
        short: caller,
        account: None,
        role: None,
        service: None,
    };
    // The prefix repeats the caller type, which is shown beside the name.
    for prefix in ["service:", "identitycenter:", "account:"] {
        if let Some(short) = caller.strip_prefix(prefix).filter(|s| !s.is_empty()) {
            return CallerName { short, ..whole };
        }
    }
    let Some(rest) = caller.strip_prefix("arn:") else {
        return whole;
    };
    let mut parts = rest.splitn(5, ':');
    let (Some(_partition), Some(_service), Some(_region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return whole;
    };
    let account = Some(account).filter(|a| !a.is_empty());
    let named = |short: &'c str| CallerName {
        short,
        account,
        role: None,
        service: None,
    };
    match resource.split_once('/') {
        Some(("role", path)) => match service_linked_role_service(caller) {
            Some(service) => CallerName {
                short: if service.is_empty() {
                    path.rsplit('/').next().unwrap_or(path)
                } else {
                    service
                },
                service: Some(service),
                ..named(caller)
            },
            None => named(
                path.rsplit('/')
                    .next()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(caller),
            ),
        },
        Some(("assumed-role", path)) => match path.split_once('/') {
            Some((role, session)) if !session.is_empty() => CallerName {
                role: Some(permission_set(role)),
                ..named(session)
            },
            _ => named(caller),
        },
        Some(("user" | "federated-user", path)) => named(
            path.rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or(caller),
        ),
        None if resource == "root" => named("root"),
        _ => named(caller),
    }
}

/// `AWSReservedSSO_DataEngineer_5d2c8b1e9f3a7c40` → `DataEngineer`; any
/// other role name as it is.
fn permission_set(role: &str) -> &str {
    role.strip_prefix("AWSReservedSSO_")
        .and_then(|rest| rest.rsplit_once('_'))
        .map(|(set, _)| set)
        .filter(|set| !set.is_empty())
        .unwrap_or(role)
}

fn text<'a>(field: &'a Option<crate::record::Text<'a>>) -> Option<&'a str> {
    field.as_ref().map(|t| t.as_str()).filter(|t| !t.is_empty())
}

fn assumed_role<'a>(
    identity: &'a UserIdentity<'a>,
    session_arn: Option<&'a str>,
    from_console: bool,
    human_roles: &HumanRoles,
) -> Option<Caller<'a>> {
    let issuer = identity
        .session_context
        .as_ref()
        .and_then(|c| c.session_issuer.as_ref());
    let issuer_arn = issuer.and_then(|i| text(&i.arn));
    let role_arn: Cow<'a, str> = match issuer_arn {
        Some(arn) => Cow::Borrowed(arn),
        None => Cow::Owned(role_arn_from_session(session_arn?)?),
    };
    let role_name = role_arn.rsplit('/').next().unwrap_or_default();
    // A service-linked role is the AWS service it serves, whatever the
    // record or the patterns say: its sessions are the service's, not people.
    let person = service_linked_role_service(&role_arn).is_none()
        && (role_name.starts_with("AWSReservedSSO_")
            || from_console
            || human_roles.matches(role_name, &role_arn));
    let id = match (person, session_arn) {
        (true, Some(session)) => Cow::Borrowed(session),
        _ => role_arn,
    };
    Some(Caller {
        id,
        kind: CallerType::AssumedRole,
        person,
    })
}

/// `arn:P:sts::A:assumed-role/ROLE/SESSION` → `arn:P:iam::A:role/ROLE`
/// (the role's path is not in the session ARN and is left out).
fn role_arn_from_session(session_arn: &str) -> Option<String> {
    let rest = session_arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let partition = parts.next()?;
    let _service = parts.next()?;
    let _region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?.strip_prefix("assumed-role/")?;
    let role = resource.split('/').next().filter(|r| !r.is_empty())?;
    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
}

fn unknown<'a>(identity: Option<&'a UserIdentity<'a>>, record: &'a RecordView<'a>) -> Caller<'a> {
    let best = identity
        .and_then(|i| {
            text(&i.arn)
                .or_else(|| text(&i.principal_id))
                .or_else(|| text(&i.invoked_by))
                .or_else(|| text(&i.account_id))
        })
        .or_else(|| text(&record.recipient_account_id))
        .unwrap_or("unidentified");
    Caller {
        id: Cow::Owned(format!("unknown:{best}")),
        kind: CallerType::Unknown,
        person: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arn_is_derived_from_a_session_arn() {
        assert_eq!(
            role_arn_from_session("arn:aws:sts::111:assumed-role/app/i-1").as_deref(),
            Some("arn:aws:iam::111:role/app")
        );
        assert_eq!(role_arn_from_session("arn:aws:iam::111:user/x"), None);
    }

    #[test]
    fn human_role_patterns_match_name_or_arn() {
        let roles = HumanRoles::new(["Admin*", "arn:aws:iam::*:role/people/*"]).unwrap();
        assert!(roles.matches("AdminAccess", "arn:aws:iam::1:role/AdminAccess"));
        assert!(roles.matches("dev", "arn:aws:iam::1:role/people/dev"));
        assert!(!roles.matches("app", "arn:aws:iam::1:role/app"));
        assert!(HumanRoles::new(["[unclosed"]).is_err());
    }

    /// The caller of one record made of `identity` and the top-level `extra`
    /// fields (a JSON object's members, without braces).
    fn caller_of(identity: &str, extra: &str, roles: &HumanRoles) -> (String, bool) {
        let sep = if extra.is_empty() { "" } else { "," };
        let json = format!(r#"{{"userIdentity":{identity}{sep}{extra}}}"#);
        let view: RecordView<'_> = serde_json::from_str(&json).expect("a record");
        let caller = identify(&view, roles);
        (caller.id.into_owned(), caller.person)
    }

    const ROLE_SESSION: &str = r#"{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/support-ops/maria","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/support-ops"}}}"#;
    const IAM_USER: &str = r#"{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/staff/jo.doe","userName":"jo.doe"}"#;
    const SERVICE_LINKED: &str = r#"{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/AWSServiceRoleForApplicationAutoScaling_DynamoDBTable/AutoScaling","invokedBy":"dynamodb.application-autoscaling.amazonaws.com","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/aws-service-role/dynamodb.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_DynamoDBTable"}}}"#;

    #[test]
    fn a_role_session_is_a_person_when_the_record_shows_a_console_sign_in() {
        let none = HumanRoles::default();
        let role = "arn:aws:iam::111122223333:role/support-ops";
        let session = "arn:aws:sts::111122223333:assumed-role/support-ops/maria";
        assert_eq!(caller_of(ROLE_SESSION, "", &none), (role.into(), false));
        for signal in [
            r#""sessionCredentialFromConsole":"true""#,
            r#""userAgent":"console.aws.amazon.com""#,
            r#""userAgent":"[signin.amazonaws.com]""#,
            r#""userAgent":"console.amazonaws.com""#,
        ] {
            assert_eq!(
                caller_of(ROLE_SESSION, signal, &none),
                (session.into(), true),
                "{signal}"
            );
        }
        let signed_in = ROLE_SESSION.replacen(
            r#""type":"AssumedRole","#,
            r#""type":"AssumedRole","invokedBy":"signin.amazonaws.com","#,
            1,
        );
        assert_eq!(caller_of(&signed_in, "", &none), (session.into(), true));
        // A browser alone is not a console sign-in (a web app has one too),
        // nor is a console-like name inside a longer user agent.
        for not_a_signal in [
            r#""userAgent":"Mozilla/5.0 (X11; Linux x86_64) Firefox/123.0""#,
            r#""userAgent":"aws-cli/2.15 console.aws.amazon.com""#,
            r#""sessionCredentialFromConsole":"false""#,
        ] {
            assert_eq!(
                caller_of(ROLE_SESSION, not_a_signal, &none),
                (role.into(), false),
                "{not_a_signal}"
            );
        }
    }

    #[test]
    fn an_iam_user_is_a_person_when_it_signs_in_or_matches_a_pattern() {
        let none = HumanRoles::default();
        let user = "arn:aws:iam::111122223333:user/staff/jo.doe";
        assert_eq!(caller_of(IAM_USER, "", &none), (user.into(), false));
        assert_eq!(
            caller_of(IAM_USER, r#""userAgent":"signin.amazonaws.com""#, &none),
            (user.into(), true)
        );
        assert_eq!(
            caller_of(IAM_USER, r#""sessionCredentialFromConsole":true"#, &none),
            (user.into(), true)
        );
        for pattern in ["jo.*", "arn:aws:iam::*:user/staff/*"] {
            let roles = HumanRoles::new([pattern]).unwrap();
            assert_eq!(
                caller_of(IAM_USER, "", &roles),
                (user.into(), true),
                "{pattern}"
            );
        }
        let other = HumanRoles::new(["arn:aws:iam::*:user/robots/*"]).unwrap();
        assert_eq!(caller_of(IAM_USER, "", &other), (user.into(), false));
    }

    #[test]
    fn a_service_linked_role_is_the_service_never_a_person() {
        let role = "arn:aws:iam::111122223333:role/aws-service-role/dynamodb.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_DynamoDBTable";
        let everyone = HumanRoles::new(["*"]).unwrap();
        assert_eq!(
            caller_of(SERVICE_LINKED, "", &HumanRoles::default()),
            (role.into(), false)
        );
        // Not even a pattern that matches every role, or a console signal,
        // makes its sessions people: the caller stays the role.
        assert_eq!(
            caller_of(
                SERVICE_LINKED,
                r#""sessionCredentialFromConsole":"true""#,
                &everyone
            ),
            (role.into(), false)
        );
        assert_eq!(
            service_linked_role_service(role),
            Some("dynamodb.application-autoscaling.amazonaws.com")
        );
        // Derived from a session ARN, the path is gone but the name says it.
        assert_eq!(
            service_linked_role_service("arn:aws:iam::1:role/AWSServiceRoleForGlue"),
            Some("")
        );
        assert_eq!(
            service_linked_role_service("arn:aws:iam::1:role/service/orders-api"),
            None
        );
        assert_eq!(
            service_linked_role_service("service:glue.amazonaws.com"),
            None
        );
    }

    #[test]
    fn caller_names_are_short_for_people() {
        /// caller string, short name, account, role, service
        type Case<'a> = (
            &'a str,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: [Case<'_>; 11] = [
            (
                "arn:aws:iam::111122223333:role/service/orders-api",
                "orders-api",
                Some("111122223333"),
                None,
                None,
            ),
            (
                "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_DataEngineer_5d2c8b1e9f3a7c40/alice@example.com",
                "alice@example.com",
                Some("111122223333"),
                Some("DataEngineer"),
                None,
            ),
            (
                "arn:aws:sts::111122223333:assumed-role/support-ops/maria",
                "maria",
                Some("111122223333"),
                Some("support-ops"),
                None,
            ),
            (
                "arn:aws:iam::111122223333:user/ops/maria.garcia",
                "maria.garcia",
                Some("111122223333"),
                None,
                None,
            ),
            ("arn:aws:iam::111122223333:root", "root", Some("111122223333"), None, None),
            (
                "arn:aws:sts::111122223333:federated-user/partner-sync",
                "partner-sync",
                Some("111122223333"),
                None,
                None,
            ),
            (
                "arn:aws:iam::111122223333:role/aws-service-role/dynamodb.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_DynamoDBTable",
                "dynamodb.application-autoscaling.amazonaws.com",
                Some("111122223333"),
                None,
                Some("dynamodb.application-autoscaling.amazonaws.com"),
            ),
            ("service:glue.amazonaws.com", "glue.amazonaws.com", None, None, None),
            ("account:444455556666", "444455556666", None, None, None),
            (
                "identitycenter:94482488-3041-7026-18f3-be45837cd0e4",
                "94482488-3041-7026-18f3-be45837cd0e4",
                None,
                None,
                None,
            ),
            ("unknown:AIDAEXAMPLE", "unknown:AIDAEXAMPLE", None, None, None),
        ];
        for (caller, short, account, role, service) in cases {
            let name = caller_name(caller);
            assert_eq!(
                (name.short, name.account, name.role, name.service),
                (short, account, role, service),
                "{caller}"
            );
        }
        // Odd ARNs are shown whole rather than guessed at.
        for odd in [
            "arn:aws:iam::1:role/",
            "arn:aws:sts::1:assumed-role/r",
            "arn:aws",
        ] {
            assert_eq!(caller_name(odd).short, odd);
        }
    }
}
