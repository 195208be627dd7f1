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

/// Role patterns that mark role sessions as people, so that each person is
/// kept apart instead of being folded into the role.
///
/// Roles named `AWSReservedSSO_*` and sessions from the console are people
/// without any configuration.
#[derive(Debug, Clone, Default)]
pub struct HumanRoles {
    set: Option<GlobSet>,
}

impl HumanRoles {
    /// Builds the matcher from glob patterns (`*` matches any text, `/`
    /// included). A pattern is matched against the role name and against the
    /// role ARN, so both `Admin*` and `arn:aws:iam::*:role/people/*` work.
    pub fn new<I, S>(patterns: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let set = crate::globs::glob_set(patterns, "human-role pattern")?;
        Ok(HumanRoles { set })
    }

    fn matches(&self, role_name: &str, role_arn: &str) -> bool {
        self.set
            .as_ref()
            .is_some_and(|set| set.is_match(role_name) || set.is_match(role_arn))
    }
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
    let from_console = record.session_credential_from_console.is_some_and(|f| f.0);
    let person_if = |person: bool, id: Cow<'a, str>| Caller { id, kind, person };
    match kind {
        CallerType::AssumedRole => assumed_role(identity, arn, from_console, human_roles)
            .unwrap_or_else(|| unknown(Some(identity), record)),
        CallerType::IamUser | CallerType::Root | CallerType::FederatedUser => match arn {
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
    let person = role_name.starts_with("AWSReservedSSO_")
        || from_console
        || human_roles.matches(role_name, &role_arn);
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
}
