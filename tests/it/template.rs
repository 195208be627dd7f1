//! template.yaml keeps ddb-audit's own rules (tests/template/check_template.py):
//! least privilege, encryption at rest, PITR, names in step with the code.
//! Each rule is shown to hold on the template and to fail on a copy broken
//! in that one way. (cfn-lint and `sam validate --lint` run in `make
//! lint-template`, which CI runs.)

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use ddb_audit_tests::{moto, workspace_root};

/// Runs the checker on `template`: (exit code, stdout).
fn check(template: &Path) -> Result<(i32, String)> {
    let python = moto::python();
    let out = Command::new(&python)
        .arg(workspace_root().join("tests/template/check_template.py"))
        .arg(template)
        .output()
        .with_context(|| format!("running the template checker with `{python}`"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().context("the checker was killed")?;
    ensure!(
        code == 0 || code == 1,
        "the checker crashed (exit {code}; `make moto` installs cfn-lint, which it needs):\n{stdout}{stderr}"
    );
    Ok((code, stdout))
}

fn template() -> Result<String> {
    Ok(std::fs::read_to_string(
        workspace_root().join("template.yaml"),
    )?)
}

/// The checker's verdict on template.yaml with `from` replaced by `to`
/// (exactly once, so the test breaks if the template changes under it).
fn broken(from: &str, to: &str) -> Result<String> {
    let text = template()?;
    ensure!(
        text.matches(from).count() == 1,
        "template.yaml should contain {from:?} exactly once"
    );
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("template.yaml");
    std::fs::write(&path, text.replacen(from, to, 1))?;
    let (code, out) = check(&path)?;
    ensure!(code == 1, "the broken template passed:\n{out}");
    Ok(out)
}

#[test]
fn the_template_keeps_every_rule() -> Result<()> {
    let (code, out) = check(&workspace_root().join("template.yaml"))?;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok (3 functions"), "{out}");
    Ok(())
}

#[test]
fn a_wildcard_resource_where_the_table_is_known_fails() -> Result<()> {
    let out = broken(
        "                Action: [dynamodb:GetItem, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:Query]\n                Resource: !GetAtt SummaryTable.Arn",
        "                Action: [dynamodb:GetItem, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:Query]\n                Resource: !Sub \"arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*\"",
    )?;
    assert!(
        out.contains("NotifierRole policy notifier statement NoticeLedgerAndBackfillMarkers: wildcard resource"),
        "{out}"
    );
    Ok(())
}

#[test]
fn a_star_resource_or_action_fails() -> Result<()> {
    let out = broken(
        "                Action: sns:Publish\n                Resource: !Ref NoticesTopic",
        "                Action: sns:*\n                Resource: \"*\"",
    )?;
    assert!(out.contains("wildcard action 'sns:*'"), "{out}");
    assert!(out.contains("wildcard resource '*'"), "{out}");
    Ok(())
}

#[test]
fn sam_policy_templates_on_a_function_fail() -> Result<()> {
    let out = broken(
        "      Role: !GetAtt NotifierRole.Arn\n",
        "      Policies: [AWSLambdaDynamoDBExecutionRole]\n",
    )?;
    assert!(out.contains("NotifierFunction: SAM Policies"), "{out}");
    assert!(out.contains("NotifierFunction: no Role"), "{out}");
    Ok(())
}

#[test]
fn the_summary_table_without_pitr_fails() -> Result<()> {
    let out = broken(
        "PointInTimeRecoveryEnabled: true",
        "PointInTimeRecoveryEnabled: false",
    )?;
    assert!(
        out.contains("SummaryTable: point-in-time recovery is off"),
        "{out}"
    );
    Ok(())
}

#[test]
fn an_unencrypted_topic_or_queue_fails() -> Result<()> {
    let out = broken("      KmsMasterKeyId: alias/aws/sns\n", "")?;
    assert!(
        out.contains("NoticesTopic: the topic is not encrypted"),
        "{out}"
    );
    let out = broken(
        "      MessageRetentionPeriod: 1209600\n      SqsManagedSseEnabled: true\n\n  ObjectQueuePolicy:",
        "      MessageRetentionPeriod: 1209600\n\n  ObjectQueuePolicy:",
    )?;
    assert!(
        out.contains("ObjectDeadLetterQueue: the queue is not encrypted"),
        "{out}"
    );
    Ok(())
}

#[test]
fn names_out_of_step_with_the_code_fail() -> Result<()> {
    let out = broken("IndexName: by-caller", "IndexName: by-principal")?;
    assert!(out.contains("no index 'by-caller'"), "{out}");
    let out = broken(
        "NOTIFY_MAX_PER_HOUR: !Ref MaxNoticesPerHour",
        "NOTIFY_MAX_HOURLY: !Ref MaxNoticesPerHour",
    )?;
    assert!(
        out.contains("environment variable NOTIFY_MAX_HOURLY is not read by the code"),
        "{out}"
    );
    Ok(())
}

#[test]
fn a_visibility_timeout_under_six_function_timeouts_fails() -> Result<()> {
    let out = broken("VisibilityTimeout: 1800", "VisibilityTimeout: 900")?;
    assert!(
        out.contains(
            "ObjectQueue: VisibilityTimeout 900 is under six times S3IngestFunction's Timeout 300"
        ),
        "{out}"
    );
    Ok(())
}
