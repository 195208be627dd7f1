#!/usr/bin/env python3
"""ddb-audit's own rules for template.yaml, beyond what cfn-lint checks.

    python tests/template/check_template.py [template.yaml]

Exits 1 and names every broken rule (resource, statement, what is wrong), 0
with a one-line summary when all hold. Run by `make lint-template` and by the
integration tests (tests/it/template.rs), which also feed it broken copies to
prove each rule can fail. Needs cfn-lint's YAML decoder (cfn-lint is in .venv).

The rules:
- least privilege: every Allow statement names its resources; `*`, or an ARN
  with a wildcard service, region, account or resource name, is refused
  except for actions AWS gives no resource-level permission
  (NO_RESOURCE_ACTIONS); no wildcard actions; functions run under the
  template's own roles (no SAM policy templates or managed policies, which
  carry `*` resources);
- encryption at rest: the SNS topic under KMS, every queue under SSE, the
  summary table with SSE, the trail bucket encrypted and closed to the public;
- the summary table has point-in-time recovery, the stream the notifier
  needs, TTL on the attribute the code writes, and the key and index names
  of shared/core/src/summary.rs;
- every function: provided.al2023 on arm64, built by cargo-lambda, its own log
  group with a retention, and only environment variables the code reads;
- the S3 queue's visibility timeout is at least six times s3-ingest's timeout.
"""

import re
import sys
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]

# Actions that take no resource ARN in IAM (the service authorization
# reference lists no resource type for them): `*` is their only resource.
NO_RESOURCE_ACTIONS = {"dynamodb:ListStreams"}


class Problems:
    def __init__(self):
        self.found = []

    def add(self, where, what):
        self.found.append(f"{where}: {what}")


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def resource_strings(resource):
    """The literal text of a Resource entry: plain strings and the format
    string of Fn::Sub; references (Ref, GetAtt) name a resource, so they are
    never wildcards."""
    if isinstance(resource, str):
        return [resource]
    if isinstance(resource, dict):
        if "Fn::Sub" in resource:
            sub = resource["Fn::Sub"]
            return [sub if isinstance(sub, str) else sub[0]]
        if "Fn::If" in resource:
            _, yes, no = resource["Fn::If"]
            return resource_strings(yes) + resource_strings(no)
    return []


# Resource types of the template being checked, by logical id.
TYPES = {}

# The ARN shape of a resource type: an S3 bucket's ARN has no region or account.
ARN_OF = {"AWS::S3::Bucket": "arn:aws:s3:::named"}


def named_arn(logical_id):
    return ARN_OF.get(TYPES.get(logical_id), "arn:aws:svc:region:111122223333:named")


def wildcard(arn):
    """Whether an ARN (or `*`) leaves a name open. An S3 object path under a
    named bucket (`arn:aws:s3:::bucket/prefix/*`) names its bucket and prefix,
    so it is allowed; `table/*`, `*` in the account or region, or `*` alone
    are not."""
    if arn.strip() == "*":
        return True
    # Fn::Sub placeholders name things: stand a name in for each.
    arn = arn.replace("${AWS::Partition}", "aws").replace("${AWS::Region}", "region")
    arn = arn.replace("${AWS::AccountId}", "111122223333")
    arn = re.sub(r"\$\{([A-Za-z0-9]+)\.Arn\}", lambda m: named_arn(m.group(1)), arn)
    arn = re.sub(r"\$\{[A-Za-z0-9:.]+\}", "named", arn)
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return "*" in arn
    _, _, service, region, account, rest = parts
    if "*" in service or "*" in region or "*" in account:
        return True
    if service == "s3":
        bucket = rest.partition("/")[0]
        return "*" in bucket
    return "*" in rest


def check_statements(where, document, problems):
    for index, statement in enumerate(as_list(document.get("Statement"))):
        sid = statement.get("Sid", f"#{index}")
        at = f"{where} statement {sid}"
        if statement.get("Effect") != "Allow":
            continue
        actions = as_list(statement.get("Action"))
        if "NotAction" in statement or "NotResource" in statement:
            problems.add(at, "NotAction/NotResource grant more than they name")
        for action in actions:
            if isinstance(action, str) and "*" in action:
                problems.add(at, f"wildcard action {action!r}")
        for resource in as_list(statement.get("Resource")):
            for text in resource_strings(resource):
                if not wildcard(text):
                    continue
                if text.strip() == "*" and actions and all(a in NO_RESOURCE_ACTIONS for a in actions):
                    continue
                problems.add(at, f"wildcard resource {text!r} for {', '.join(map(str, actions))}")


def code_constants():
    """The summary table's names as the code spells them."""
    text = (ROOT / "shared" / "core" / "src" / "summary.rs").read_text()
    names = {}
    for name in ("PK", "SK", "GSI1_PK", "GSI1_SK", "CALLER_INDEX", "EXPIRES_AT"):
        found = re.search(rf'pub const {name}: &str = "([^"]+)";', text)
        names[name] = found.group(1) if found else None
    return names


def code_env_vars():
    """Every environment variable the functions' configuration reads."""
    text = (ROOT / "shared" / "core" / "src" / "config.rs").read_text()
    return set(re.findall(r'vars\.(?:required|number|list|get)\("([A-Z0-9_]+)"', text))


def check(path):
    template, matches = decode(str(path))
    problems = Problems()
    if template is None:
        for match in matches:
            problems.add(str(path), str(match))
        return problems, {}
    resources = template.get("Resources", {})
    TYPES.update({name: r.get("Type") for name, r in resources.items()})
    globals_fn = template.get("Globals", {}).get("Function", {})
    counts = {"statements": 0, "functions": 0, "queues": 0}

    for name, resource in resources.items():
        kind = resource.get("Type")
        props = resource.get("Properties", {}) or {}
        if kind == "AWS::IAM::Role":
            if props.get("ManagedPolicyArns"):
                problems.add(name, "managed policies carry resources we cannot scope; use inline policies")
            for policy in as_list(props.get("Policies")):
                document = policy.get("PolicyDocument", {})
                counts["statements"] += len(as_list(document.get("Statement")))
                check_statements(f"{name} policy {policy.get('PolicyName')}", document, problems)
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            document = props.get("PolicyDocument", {})
            counts["statements"] += len(as_list(document.get("Statement")))
            check_statements(name, document, problems)
        elif kind in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy"):
            check_statements(name, props.get("PolicyDocument", {}), problems)
        elif kind == "AWS::SNS::Topic":
            if not props.get("KmsMasterKeyId"):
                problems.add(name, "the topic is not encrypted (KmsMasterKeyId)")
        elif kind == "AWS::SQS::Queue":
            counts["queues"] += 1
            if props.get("SqsManagedSseEnabled") is not True and not props.get("KmsMasterKeyId"):
                problems.add(name, "the queue is not encrypted (SqsManagedSseEnabled or KmsMasterKeyId)")
        elif kind == "AWS::DynamoDB::Table":
            check_table(name, props, problems)
        elif kind == "AWS::S3::Bucket":
            if not props.get("BucketEncryption"):
                problems.add(name, "the bucket has no default encryption")
            block = props.get("PublicAccessBlockConfiguration", {})
            for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
                if block.get(flag) is not True:
                    problems.add(name, f"public access not blocked ({flag})")
        elif kind == "AWS::Serverless::Function":
            counts["functions"] += 1
            check_function(name, resource, globals_fn, resources, problems)

    check_queue_timeout(resources, problems)
    return problems, counts


def check_table(name, props, problems):
    names = code_constants()
    if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is not True:
        problems.add(name, "point-in-time recovery is off")
    if props.get("SSESpecification", {}).get("SSEEnabled") is not True:
        problems.add(name, "SSESpecification.SSEEnabled is not true")
    if props.get("StreamSpecification", {}).get("StreamViewType") != "NEW_AND_OLD_IMAGES":
        problems.add(name, "the notifier needs a stream with NEW_AND_OLD_IMAGES")
    ttl = props.get("TimeToLiveSpecification", {})
    if ttl.get("Enabled") is not True or ttl.get("AttributeName") != names["EXPIRES_AT"]:
        problems.add(name, f"TTL must be on {names['EXPIRES_AT']!r}, as the code writes it")
    keys = {k["KeyType"]: k["AttributeName"] for k in props.get("KeySchema", [])}
    if keys != {"HASH": names["PK"], "RANGE": names["SK"]}:
        problems.add(name, f"key schema {keys} differs from the code's {names['PK']}/{names['SK']}")
    indexes = {i.get("IndexName"): i for i in props.get("GlobalSecondaryIndexes", [])}
    index = indexes.get(names["CALLER_INDEX"])
    if index is None:
        problems.add(name, f"no index {names['CALLER_INDEX']!r}")
    else:
        keys = {k["KeyType"]: k["AttributeName"] for k in index.get("KeySchema", [])}
        if keys != {"HASH": names["GSI1_PK"], "RANGE": names["GSI1_SK"]}:
            problems.add(name, f"index key schema {keys} differs from the code's")


def check_function(name, resource, globals_fn, resources, problems):
    props = {**globals_fn, **(resource.get("Properties") or {})}
    if props.get("Runtime") != "provided.al2023":
        problems.add(name, "Runtime must be provided.al2023")
    if props.get("Architectures") != ["arm64"]:
        problems.add(name, "Architectures must be [arm64]")
    if (resource.get("Metadata") or {}).get("BuildMethod") != "rust-cargolambda":
        problems.add(name, "Metadata.BuildMethod must be rust-cargolambda")
    if "Policies" in props:
        problems.add(name, "SAM Policies add managed policies with `*` resources; give the function its own Role")
    if "Role" not in props:
        problems.add(name, "no Role: SAM would make one with managed policies")
    group = (props.get("LoggingConfig") or {}).get("LogGroup")
    ref = group.get("Ref") if isinstance(group, dict) else None
    log_group = resources.get(ref, {}) if ref else {}
    if log_group.get("Type") != "AWS::Logs::LogGroup" or "RetentionInDays" not in log_group.get("Properties", {}):
        problems.add(name, "LoggingConfig.LogGroup must be a log group of this template with RetentionInDays")
    known = code_env_vars()
    variables = {}
    for source in (globals_fn, resource.get("Properties") or {}):
        variables.update(((source.get("Environment") or {}).get("Variables") or {}))
    for variable in variables:
        if variable not in known:
            problems.add(name, f"environment variable {variable} is not read by the code")


def check_queue_timeout(resources, problems):
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        for event in (props.get("Events") or {}).values():
            if event.get("Type") != "SQS":
                continue
            queue = event.get("Properties", {}).get("Queue", {})
            target = queue.get("Fn::GetAtt", [None])[0] if isinstance(queue, dict) else None
            visibility = resources.get(target, {}).get("Properties", {}).get("VisibilityTimeout", 30)
            timeout = props.get("Timeout", 3)
            if int(visibility) < 6 * int(timeout):
                problems.add(
                    target or name,
                    f"VisibilityTimeout {visibility} is under six times {name}'s Timeout {timeout}",
                )


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "template.yaml"
    problems, counts = check(path)
    if problems.found:
        for problem in problems.found:
            print(f"{path}: {problem}")
        return 1
    print(
        f"{path}: ok ({counts['functions']} functions, {counts['statements']} IAM statements "
        f"least privilege, {counts['queues']} queues encrypted)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
