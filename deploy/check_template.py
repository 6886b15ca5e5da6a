"""Checks deploy/template.yaml offline: cfn-lint, then the SAM template transformed to plain
CloudFormation (as `sam deploy` would) and asserted resource by resource against what Engage
needs on AWS. Run by `make test` (scripts/test.sh) with the project's venv:

    $ENGAGE_VENV/bin/python deploy/check_template.py
"""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "template.yaml"
checks = []


def check(what, condition):
    checks.append(what)
    if not condition:
        sys.exit(f"deploy/template.yaml: {what}: FAILED")


class NoManagedPolicies:
    """Every function names its own role; no managed policy is looked up."""

    def load(self):
        return {}


def transformed():
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.disable(logging.WARNING)
    template = yaml_parse(TEMPLATE.read_text())
    # `sam package` replaces local code folders with S3 addresses.
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://engage-artifacts/function.zip"
    return transform(template, {"Prefix": "engage"}, NoManagedPolicies())["Resources"]


def of_type(resources, kind):
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def statements(role):
    for policy in role["Properties"].get("Policies", []):
        yield from policy["PolicyDocument"]["Statement"]


def main():
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(TEMPLATE)],
        capture_output=True,
        text=True,
    )
    if lint.stdout.strip() or lint.stderr.strip():
        print(lint.stdout, lint.stderr, sep="")
    check("cfn-lint reports nothing", lint.returncode == 0 and not lint.stdout.strip())

    resources = transformed()
    table = resources["RecordsTable"]["Properties"]
    check("table stream NEW_AND_OLD_IMAGES", table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES")
    check("table TTL on expires_at", table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True})
    check("table point-in-time recovery", table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True)
    check("table on demand", table["BillingMode"] == "PAY_PER_REQUEST")
    check("table indexes gsi1 and gsi2", sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]) == ["gsi1", "gsi2"])

    queue = resources["EventsQueue"]["Properties"]
    check("queue redrives to the DLQ", queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]})
    check("queue max receives set", int(queue["RedrivePolicy"]["maxReceiveCount"]) >= 1)
    subscription = resources["EventsSubscription"]["Properties"]
    check("SNS -> SQS raw delivery", subscription["Protocol"] == "sqs" and subscription["RawMessageDelivery"] is True)
    queue_policy = resources["EventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    check(
        "queue policy limited by SourceArn",
        all(s["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Ref": "EventsTopic"} for s in queue_policy),
    )

    functions = of_type(resources, "AWS::Lambda::Function")
    check("five functions", sorted(functions) == ["EmailFunction", "RescoreFunction", "StreamFunction", "ViewsFunction", "WebFunction"])
    for name, function in functions.items():
        props = function["Properties"]
        check(f"{name} on provided.al2023", props["Runtime"] == "provided.al2023")
        check(f"{name} on arm64", props["Architectures"] == ["arm64"])
        role = props["Role"]["Fn::GetAtt"][0]
        check(f"{name} has its own role", role == f"{name}Role")
        for statement in statements(resources[role]):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            check(f"{name}: no wildcard actions", all("*" not in a for a in actions))
            if statement["Resource"] == "*":
                check(f"{name}: only tracing on every resource", all(a.startswith("xray:") for a in actions))
        check(f"{name} has no managed policies", not resources[role]["Properties"].get("ManagedPolicyArns"))

    aliases = of_type(resources, "AWS::Lambda::Alias")
    check("an alias per function", len(aliases) == len(functions))
    for name, alias in aliases.items():
        check(f"{name} shifts traffic through CodeDeploy", "CodeDeployLambdaAliasUpdate" in alias.get("UpdatePolicy", {}))
    groups = of_type(resources, "AWS::CodeDeploy::DeploymentGroup")
    configs = [g["Properties"]["DeploymentConfigName"] for g in groups.values()]
    check("gradual (canary or linear) deployments", len(configs) == len(functions) and all("Canary" in json.dumps(c) or "Linear" in json.dumps(c) for c in configs))
    check("deployments roll back on alarms", all(g["Properties"]["AlarmConfiguration"]["Enabled"] for g in groups.values()))
    web_group = groups["WebFunctionDeploymentGroup"]
    check("the web deployment also rolls back on server errors (5xx)",
          {"Name": {"Ref": "WebServerErrorsAlarm"}} in web_group["Properties"]["AlarmConfiguration"]["Alarms"])
    server_errors = resources["WebServerErrorsAlarm"]["Properties"]
    check("the server-errors alarm watches the web function's 5xx metric",
          server_errors["Namespace"] == "Engage" and server_errors["MetricName"] == "Errors"
          and server_errors["Dimensions"] == [{"Name": "Function", "Value": "web"}])
    metrics_rs = (HERE.parent / "server/src/metrics.rs").read_text()
    check("the web function emits that metric (EMF, Function=web, 5xx as Errors)",
          '"Dimensions": [["Route"], ["Function"]]' in metrics_rs and '"Function": "web"' in metrics_rs
          and '"Errors": u8::from(status >= 500)' in metrics_rs)

    schedules = of_type(resources, "AWS::Scheduler::Schedule")
    check("a daily rescore on EventBridge Scheduler", len(schedules) == 1 and all(
        sch["Properties"]["ScheduleExpression"].startswith("cron(")
        and "RescoreFunction" in json.dumps(sch["Properties"]["Target"])
        and sch["Properties"]["Target"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        for sch in schedules.values()))
    rescore_actions = {a for st in statements(resources["RescoreFunctionRole"]) for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    check("the rescore function reads the books and publishes, nothing more",
          {"dynamodb:Query", "dynamodb:GetItem", "sns:Publish"} <= rescore_actions
          and not any(a.startswith(("sqs:", "dynamodb:Put", "dynamodb:Update", "dynamodb:Delete")) for a in rescore_actions))
    source = "".join(p.read_text() for d in ["cloud/src", "server/src"] for p in (HERE.parent / d).rglob("*.rs") if p.name != "bootstrap.rs")
    check("no DynamoDB scan in the functions' code (no role grants dynamodb:Scan)", ".scan()" not in source)
    mappings = {m["Properties"]["FunctionName"]["Ref"]: m["Properties"] for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()}
    stream = mappings["StreamFunctionAliaslive"]
    check("stream mapping bisects failing batches", stream["BisectBatchOnFunctionError"] is True)
    check("stream mapping retries a bounded number of times", 0 <= stream["MaximumRetryAttempts"] <= 10000)
    check("stream mapping drops records past an age", stream["MaximumRecordAgeInSeconds"] >= 60)
    check("stream mapping reports item failures", stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"])
    check(
        "stream mapping has an on-failure destination",
        stream["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]},
    )
    sqs = mappings["EmailFunctionAliaslive"]
    check("queue mapping reports item failures", sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"])
    check("queue mapping limits concurrency", sqs["ScalingConfig"]["MaximumConcurrency"] >= 2)
    email_timeout = functions["EmailFunction"]["Properties"]["Timeout"]
    check("visibility timeout >= 6x the email function's timeout", queue["VisibilityTimeout"] >= 6 * email_timeout)
    check("deliveries visibility timeout >= 6x the email function's timeout",
          resources["DeliveriesQueue"]["Properties"]["VisibilityTimeout"] >= 6 * email_timeout)
    # The LLM's budget: the email function hands the writer its remaining time less a
    # margin (writer_deadline + within_deadline), and its timeout leaves room for at least
    # one whole LLM call after the margin and the shortest call the writer starts.
    email_main = (HERE.parent / "cloud/src/bin/engage-email-lambda.rs").read_text()
    check("the email function bounds the LLM by its remaining time",
          "within_deadline(" in email_main and "writer_deadline(event.context.deadline" in email_main)
    lambda_rs = (HERE.parent / "cloud/src/lambda.rs").read_text()
    openrouter = (HERE.parent / "processors/src/openrouter.rs").read_text()
    margin = int(re.search(r"RECORDING_MARGIN: std::time::Duration = std::time::Duration::from_secs\((\d+)\)", lambda_rs).group(1))
    min_call = int(re.search(r"MIN_CALL_TIME: Duration = Duration::from_secs\((\d+)\)", openrouter).group(1))
    llm_timeout = int(re.search(r"timeout: Duration::from_secs\((\d+)\),", openrouter).group(1))
    check(f"the email function's timeout ({email_timeout} s) fits one LLM call ({llm_timeout} s) after its margins ({margin} s + {min_call} s)",
          email_timeout >= margin + min_call + llm_timeout)
    ses = resources["EmailSesAccess"]
    ses_statement = ses["Properties"]["PolicyDocument"]["Statement"][0]
    check("with a sender identity, the email function sends through SES from it alone",
          ses["Condition"] == "HasSenderIdentity"
          and set(ses_statement["Action"]) == {"ses:SendEmail", "ses:SendRawEmail"}
          and "identity/${SenderIdentity}" in json.dumps(ses_statement["Resource"])
          and ses["Properties"]["RoleName"] == {"Ref": "EmailFunctionRole"})
    email_env = functions["EmailFunction"]["Properties"]["Environment"]["Variables"]
    check("the email function is told the SES identity and configuration set",
          email_env.get("ENGAGE_SES_IDENTITY") == {"Ref": "SenderIdentity"}
          and email_env.get("ENGAGE_SES_CONFIGURATION_SET") == {"Ref": "SesConfigurationSet"})
    web_env = functions["WebFunction"]["Properties"]["Environment"]["Variables"]
    check("the email and web functions share the holdout and the attribution window",
          email_env.get("ENGAGE_HOLDOUT") == {"Ref": "Holdout"}
          and email_env.get("ENGAGE_ATTRIBUTION_WINDOW_DAYS") == {"Ref": "AttributionWindowDays"}
          and web_env.get("ENGAGE_ATTRIBUTION_WINDOW_DAYS") == {"Ref": "AttributionWindowDays"})
    check("the web function schedules sends in the business's zone and hours",
          web_env.get("ENGAGE_TIME_ZONE") == {"Ref": "TimeZone"}
          and web_env.get("ENGAGE_QUIET_HOURS") == {"Ref": "QuietHours"}
          and web_env.get("ENGAGE_SEND_HOUR") == {"Ref": "SendHour"})
    email_role = json.dumps(resources["EmailFunctionRole"]["Properties"]["Policies"])
    check("a scheduled send that comes too early can wait on the deliveries queue again",
          email_env.get("ENGAGE_DELIVERIES_QUEUE_URL") == {"Ref": "DeliveriesQueue"}
          and "sqs:SendMessage" in email_role)
    check("no outbox on Lambda: approved emails are never written to /tmp and marked sent",
          "Outbox" not in email_main and "/tmp" not in json.dumps(email_env))

    # The seeds' "multiple consumers": two queues on the one topic, each hearing its own kind.
    views_subscription = resources["ViewsSubscription"]["Properties"]
    check("the email queue hears every event but the view facts",
          subscription.get("FilterPolicy") == {"event_kind": [{"anything-but": ["view_fact"]}]})
    check("the views queue hears only the view facts, raw",
          views_subscription.get("FilterPolicy") == {"event_kind": ["view_fact"]}
          and views_subscription["RawMessageDelivery"] is True
          and views_subscription["Endpoint"] == {"Fn::GetAtt": ["ViewsQueue", "Arn"]})
    views_queue = resources["ViewsQueue"]["Properties"]
    check("views queue redrives to its DLQ", views_queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ViewsDeadLetterQueue", "Arn"]})
    check("views queue policy limited by SourceArn", all(
        s["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Ref": "EventsTopic"}
        for s in resources["ViewsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]))
    views_mapping = mappings["ViewsFunctionAliaslive"]
    check("views mapping reports item failures", views_mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"])
    check("visibility timeout >= 6x the views function's timeout",
          views_queue["VisibilityTimeout"] >= 6 * functions["ViewsFunction"]["Properties"]["Timeout"])
    views_actions = {a for st in statements(resources["ViewsFunctionRole"]) for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    check("the views function writes counters and reads its queue, nothing more",
          {"dynamodb:PutItem", "dynamodb:UpdateItem", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= views_actions
          and not any(a.startswith(("sns:", "dynamodb:Delete", "dynamodb:Query", "secretsmanager:")) for a in views_actions))

    env = functions["EmailFunction"]["Properties"]["Environment"]["Variables"]
    check("the OpenRouter key comes from Secrets Manager", env["ENGAGE_OPENROUTER_SECRET_ARN"] == {"Ref": "OpenRouterSecretArn"})
    check("no API key in any environment", not any("API_KEY" in k for f in functions.values() for k in f["Properties"].get("Environment", {}).get("Variables", {})))
    secret = resources["EmailSecretAccess"]["Properties"]["PolicyDocument"]["Statement"][0]
    check("only the email function reads the secret, only that secret", secret["Action"] == "secretsmanager:GetSecretValue" and secret["Resource"] == {"Ref": "OpenRouterSecretArn"})

    web = functions["WebFunction"]["Properties"]["Environment"]["Variables"]
    check("the web function ends live streams within its timeout", int(web["ENGAGE_LIVE_MAX_SECS"]) < functions["WebFunction"]["Properties"]["Timeout"])
    check("the web function names every resource it uses", all(k in web for k in ["ENGAGE_TABLE", "ENGAGE_TOPIC_ARN", "ENGAGE_QUEUE_URL", "ENGAGE_DLQ_URL"]))
    web_publish = [s for s in statements(resources["WebFunctionRole"]) if "sns:Publish" in json.dumps(s["Action"])]
    check("the web function publishes only to the topic", len(web_publish) == 1 and web_publish[0]["Resource"] == {"Ref": "EventsTopic"})

    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    metrics = {a["Properties"]["MetricName"] for a in alarms.values()}
    check("alarm on DLQ depth", any(
        a["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and a["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["EventsDeadLetterQueue", "QueueName"]}
        for a in alarms.values()
    ))
    check("alarm on the views DLQ depth", any(
        a["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and a["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["ViewsDeadLetterQueue", "QueueName"]}
        for a in alarms.values()
    ))
    check("alarm on stream iterator age", "IteratorAge" in metrics)

    distribution = resources["Distribution"]["Properties"]["DistributionConfig"]
    origins = {o["Id"]: o for o in distribution["Origins"]}
    check("static assets from S3 through origin access control", "OriginAccessControlId" in origins["assets"])
    check("web function behind the same distribution", "WebFunctionUrl" in json.dumps(origins["web"]["DomainName"]))
    check("CloudFront vouches for its requests to the web function with the proxy secret",
          "X-Engage-Proxy-Secret" in json.dumps(origins["web"].get("OriginCustomHeaders"))
          and resources["WebFunction"]["Properties"]["Environment"]["Variables"].get("ENGAGE_PROXY_SECRET") == {"Ref": "ProxySecret"})
    check("with a proxy secret, the function URL answers only CloudFront",
          resources["WebFunction"]["Properties"]["Environment"]["Variables"].get("ENGAGE_ONLY_THROUGH_PROXY")
          == {"Fn::If": ["HasProxySecret", "true", "false"]})
    check("assets cached, pages not", any(b["PathPattern"] == "/pkg/*" and b["TargetOriginId"] == "assets" for b in distribution["CacheBehaviors"]))
    bucket = resources["AssetsBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    check("asset bucket not public", all(bucket.values()))

    print(f"deploy/template.yaml: cfn-lint clean, {len(checks)} checks passed on {len(resources)} resources")


if __name__ == "__main__":
    main()
