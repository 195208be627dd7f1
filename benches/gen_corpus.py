#!/usr/bin/env python3
"""Writes a deterministic corpus of realistic CloudTrail files for benchmarks.

Usage: gen_corpus.py OUT_DIR [--records N] [--files F] [--seed S] [--step SECONDS]

About 60% of the records are DynamoDB data events over 40 tables and 300
callers (roles with per-instance sessions, IAM users, SSO people, AWS
services), with Query/GetItem/PutItem/BatchGetItem over two tables,
TransactWriteItems and PartiQL among them; the rest are S3, KMS and STS
events. Records are 1-1.5 KB, as CloudTrail writes them. The same arguments
always give byte-identical files (gzip mtime 0).
"""
import argparse
import gzip
import json
import os
import random
import uuid
import zlib
from datetime import datetime, timedelta

START = datetime(2024, 3, 15)
ACCOUNTS = ["111122223333", "444455556666", "777788889999"]
REGIONS = ["us-east-1", "eu-west-1"]
AGENTS = [
    "aws-sdk-java/2.25.{m} Linux/5.10.214-202.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/standard",
    "Boto3/1.34.{m} md/Botocore#1.34.{m} ua/2.0 os/linux#5.10.214 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.{m}",
    "aws-sdk-go-v2/1.26.{m} os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/dynamodb#1.31.{m}",
    "aws-sdk-js/3.540.{m} ua/2.0 os/linux#5.10.214 lang/js md/nodejs#20.11.1 api/dynamodb#3.540.0",
    "aws-cli/2.15.{m} Python/3.11.8 Linux/5.10.214 exe/x86_64.amzn.2 prompt/off command/dynamodb.query",
]


def make_callers(rng):
    callers = []
    for i in range(300):
        account = ACCOUNTS[i % len(ACCOUNTS)]
        kind = rng.random()
        if kind < 0.75:
            role = f"svc-{i:03d}-{rng.choice(['api', 'worker', 'etl', 'batch'])}"
            callers.append(("role", account, role))
        elif kind < 0.88:
            callers.append(("user", account, f"deploy-bot-{i:03d}"))
        elif kind < 0.97:
            callers.append(("sso", account, f"person{i:03d}@example.com"))
        else:
            callers.append(("service", account, rng.choice(["glue.amazonaws.com", "backup.amazonaws.com"])))
    return callers


def identity(rng, caller):
    kind, account, name = caller
    if kind == "role":
        session = f"i-{rng.getrandbits(56):014x}"
        return {
            "type": "AssumedRole",
            "principalId": f"AROA{rng.getrandbits(64):016X}:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{name}/{session}",
            "accountId": account,
            "accessKeyId": f"ASIA{rng.getrandbits(64):016X}",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": f"AROA{zlib.crc32(name.encode()):016X}",
                    "arn": f"arn:aws:iam::{account}:role/{name}",
                    "accountId": account,
                    "userName": name,
                },
                "attributes": {"creationDate": "2024-03-15T11:00:00Z", "mfaAuthenticated": "false"},
                "ec2RoleDelivery": "2.0",
            },
        }
    if kind == "user":
        return {
            "type": "IAMUser",
            "principalId": f"AIDA{rng.getrandbits(64):016X}",
            "arn": f"arn:aws:iam::{account}:user/{name}",
            "accountId": account,
            "accessKeyId": f"AKIA{rng.getrandbits(64):016X}",
            "userName": name,
        }
    if kind == "sso":
        role = "AWSReservedSSO_DeveloperAccess_0123456789abcdef"
        return {
            "type": "AssumedRole",
            "principalId": f"AROA{rng.getrandbits(64):016X}:{name}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{name}",
            "accountId": account,
            "accessKeyId": f"ASIA{rng.getrandbits(64):016X}",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLESSO000001",
                    "arn": f"arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{role}",
                    "accountId": account,
                    "userName": role,
                },
                "attributes": {"creationDate": "2024-03-15T09:00:00Z", "mfaAuthenticated": "false"},
            },
        }
    return {"type": "AWSService", "invokedBy": name}


def dynamodb_params(rng, op, tables):
    t1, t2 = rng.sample(tables, 2)
    key = {"pk": f"cust-{rng.randrange(10**6)}", "sk": f"order#{rng.randrange(10**4)}"}
    if op == "GetItem":
        return {"tableName": t1, "key": key, "consistentRead": False, "projectionExpression": "#a, #b"}
    if op == "Query":
        return {"tableName": t1, "indexName": "by-customer", "keyConditionExpression": "#pk = :pk",
                "expressionAttributeNames": {"#pk": "customerId"}, "limit": 50}
    if op in ("PutItem", "UpdateItem", "DeleteItem"):
        return {"tableName": t1, "key": key, "conditionExpression": "attribute_exists(#pk)",
                "returnValues": "NONE", "returnConsumedCapacity": "TOTAL"}
    if op == "BatchGetItem":
        return {"requestItems": {t1: {"keys": [key, key]}, t2: {"keys": [key]}}, "returnConsumedCapacity": "TOTAL"}
    if op == "TransactWriteItems":
        return {"requestItems": [{"operation": "Put", "tableName": t1, "key": key, "items": ["pk", "sk", "total"]},
                                 {"operation": "ConditionCheck", "TableName": t2, "Key": key,
                                  "ConditionExpression": "attribute_exists(pk)"}],
                "returnConsumedCapacity": "TOTAL"}
    if op == "ExecuteStatement":
        return {"statement": f"SELECT * FROM \"{t1}\".\"by-status\" WHERE status = 'open' AND total > ***(Redacted)"}
    return {"tableName": t1}


def record(rng, callers, tables, when):
    caller = rng.choice(callers[: 60]) if rng.random() < 0.7 else rng.choice(callers)
    account = caller[1]
    region = REGIONS[0] if rng.random() < 0.8 else REGIONS[1]
    base = {
        "eventVersion": "1.09",
        "userIdentity": identity(rng, caller),
        "eventTime": when,
        "awsRegion": region,
        "sourceIPAddress": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "userAgent": rng.choice(AGENTS).format(m=rng.randrange(40)),
        "requestID": f"{rng.getrandbits(200):050X}"[:52],
        "eventID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "readOnly": True,
        "eventType": "AwsApiCall",
        "apiVersion": "2012-08-10",
        "managementEvent": False,
        "recipientAccountId": account,
        "eventCategory": "Data",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": f"dynamodb.{region}.amazonaws.com"},
    }
    if rng.random() < 0.6:
        op = rng.choices(
            ["GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "TransactWriteItems",
             "ExecuteStatement", "DescribeTable"],
            weights=[30, 25, 15, 10, 3, 6, 4, 4, 3])[0]
        base.update({
            "eventSource": "dynamodb.amazonaws.com",
            "eventName": op,
            "requestParameters": dynamodb_params(rng, op, tables),
            "responseElements": None,
            "resources": [{"accountId": account, "type": "AWS::DynamoDB::Table",
                           "ARN": f"arn:aws:dynamodb:{region}:{account}:table/{tables[0]}"}],
        })
        if rng.random() < 0.3:
            base["vpcEndpointId"] = f"vpce-{rng.getrandbits(60):015x}"
        if rng.random() < 0.01:
            base["errorCode"] = "AccessDeniedException"
            base["errorMessage"] = "User is not authorized to perform this action"
    else:
        source, op, params = rng.choice([
            ("s3.amazonaws.com", "GetObject", {"bucketName": "data-lake-raw", "key": f"in/{rng.getrandbits(64):x}.parquet",
                                               "Host": "data-lake-raw.s3.us-east-1.amazonaws.com"}),
            ("kms.amazonaws.com", "Decrypt", {"encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                                              "encryptionContext": {"aws:dynamodb:tableName": rng.choice(tables)}}),
            ("sts.amazonaws.com", "AssumeRole", {"roleArn": f"arn:aws:iam::{account}:role/svc-{rng.randrange(300):03d}-api",
                                                 "roleSessionName": f"i-{rng.getrandbits(56):014x}", "durationSeconds": 3600}),
        ])
        base.update({"eventSource": source, "eventName": op, "requestParameters": params,
                     "responseElements": None, "eventCategory": "Data" if source == "s3.amazonaws.com" else "Management",
                     "managementEvent": source != "s3.amazonaws.com"})
    return base


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--step", type=float, default=3.0, help="seconds between records' eventTime")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    callers = make_callers(rng)
    tables = [f"{name}-{env}" for name in ["orders", "customers", "payments", "carts", "inventory", "sessions",
                                           "events", "ledger", "profiles", "catalog", "shipments", "audit",
                                           "coupons", "reviews", "tokens", "prices", "stock", "returns",
                                           "invoices", "quotas"] for env in ["prod", "staging"]]
    os.makedirs(args.out, exist_ok=True)
    per_file = args.records // args.files
    total_json = 0
    for f in range(args.files):
        name = f"111122223333_CloudTrail_us-east-1_20240315T{f:04d}Z_bench{f:02d}.json.gz"
        # Written record by record, so a file of any size takes little memory.
        with open(os.path.join(args.out, name), "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=raw, mtime=0) as out:
            out.write(b'{"Records":[')
            total_json += len('{"Records":[]}')
            for i in range(per_file if f < args.files - 1 else args.records - per_file * f):
                when = (START + timedelta(seconds=int((f * per_file + i) * args.step))).strftime("%Y-%m-%dT%H:%M:%SZ")
                text = json.dumps(record(rng, callers, tables, when), separators=(",", ":")).encode()
                if i:
                    out.write(b",")
                    total_json += 1
                out.write(text)
                total_json += len(text)
            out.write(b"]}")
    print(f"{args.records} records, {total_json} bytes of JSON ({total_json / args.records:.0f} B/record) in {args.files} files under {args.out}")

if __name__ == "__main__":
    main()
