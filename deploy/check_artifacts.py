"""Checks the five arm64 Lambda artifacts (target/lambda/<name>/bootstrap, built by
scripts/lambda-build.sh) as they would run on AWS, on one machine:

- each artifact is an arm64 executable and starts under qemu's user mode, talking to a
  local stand-in for the Lambda runtime API;
- each runs with the credentials of an IAM user holding exactly its role's policy from
  deploy/template.yaml (moto_server with IAM enforcement on), and with the environment
  the template gives it: a call its code makes that the policy does not allow fails the
  check, naming the function;
- together they carry a client from the web function's REST API through the stream,
  email and views functions to an email sent through SES, and the rescore function
  queues a rescore;
- the web function's pages ask for the bundle under the content-hashed name that
  `engage site export` writes for the assets bucket.

Run by `make test` (scripts/test.sh) with the project's venv:

    $ENGAGE_VENV/bin/python deploy/check_artifacts.py --engage $CARGO_TARGET_DIR/release/engage
"""

import argparse
import base64
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "template.yaml"
REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = "chk"
SENDER_IDENTITY = "salon.example"
FUNCTIONS = {
    "WebFunction": "engage-web-lambda",
    "StreamFunction": "engage-stream-lambda",
    "EmailFunction": "engage-email-lambda",
    "ViewsFunction": "engage-views-lambda",
    "RescoreFunction": "engage-rescore-lambda",
}
checks = []
# Where moto notes each call its IAM check refused: "{caller's ARN} {action} {resource}".
DENIED = Path(tempfile.gettempdir()) / f"engage-denied-{os.getpid()}.log"
# moto_server, noting what its IAM check refuses (it answers a refusal with an XML body
# the JSON-protocol SDKs cannot read, so the function's own log cannot say which call).
MOTO_NOTING_DENIALS = """
import sys
import moto.iam.access_control as access
checked = access.IAMRequestBase.check_action_permitted
def noting(self, resource):
    try:
        return checked(self, resource)
    except Exception:
        with open(%r, "a") as denied:
            denied.write(f"{getattr(self._access_key, 'arn', '?')} {self._action} {resource}\\n")
        raise
access.IAMRequestBase.check_action_permitted = noting
# moto checks a signature against the request as it re-encodes it from the parsed form,
# which differs from the SDK's encoding of some bodies (a published event carrying a
# stylist's words): signatures are not what this check is about. The key must still
# exist, and its policy must allow the call.
access.IAMRequestBase.check_signature = lambda self: None
from moto.server import main
main(sys.argv[1:])
"""


def check(what, condition, detail=""):
    checks.append(what)
    if not condition:
        sys.exit(f"deploy/check_artifacts.py: {what}: FAILED {detail}".rstrip())
    print(f"  ok  {what}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ the template, resolved


class Resolver:
    """Turns the template's intrinsic functions into the names moto gives the resources."""

    def __init__(self, template, endpoint, parameters):
        self.template = template
        self.endpoint = endpoint
        self.parameters = parameters

    def physical(self, logical):
        props = self.template["Resources"][logical].get("Properties", {})
        kind = self.template["Resources"][logical]["Type"]
        if kind == "AWS::DynamoDB::Table":
            return self.value(props["TableName"])
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{REGION}:{ACCOUNT}:{self.value(props['TopicName'])}"
        if kind == "AWS::SQS::Queue":
            return f"{self.endpoint}/{ACCOUNT}/{self.value(props['QueueName'])}"
        raise KeyError(f"no stand-in for {logical} ({kind})")

    def attribute(self, logical, name):
        props = self.template["Resources"][logical].get("Properties", {})
        kind = self.template["Resources"][logical]["Type"]
        if kind == "AWS::DynamoDB::Table" and name == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{self.value(props['TableName'])}"
        if kind == "AWS::DynamoDB::Table" and name == "StreamArn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{self.value(props['TableName'])}/stream/*"
        if kind == "AWS::SQS::Queue" and name == "Arn":
            return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.value(props['QueueName'])}"
        if kind == "AWS::SQS::Queue" and name == "QueueName":
            return self.value(props["QueueName"])
        raise KeyError(f"no stand-in for {logical}.{name}")

    def value(self, node):
        if isinstance(node, (str, int, float, bool)) or node is None:
            return node
        if isinstance(node, list):
            return [self.value(v) for v in node if v != {"Ref": "AWS::NoValue"}]
        (function, arg), = node.items()
        if function == "Ref":
            if arg in self.parameters:
                return self.parameters[arg]
            if arg == "AWS::Partition":
                return "aws"
            if arg == "AWS::Region":
                return REGION
            if arg == "AWS::AccountId":
                return ACCOUNT
            return self.physical(arg)
        if function == "Fn::GetAtt":
            logical, name = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.attribute(logical, name)
        if function == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

            def one(match):
                name = match.group(1)
                if name in extra:
                    return str(self.value(extra[name]))
                if "." in name:
                    return str(self.attribute(*name.split(".", 1)))
                return str(self.value({"Ref": name}))

            return re.sub(r"\$\{([^}]+)\}", one, text)
        if function == "Fn::If":
            condition, yes, no = arg
            chosen = yes if self.condition(condition) else no
            return None if chosen == {"Ref": "AWS::NoValue"} else self.value(chosen)
        raise KeyError(f"no stand-in for {function}")

    def condition(self, name):
        return self.truth(self.template["Conditions"][name])

    def truth(self, node):
        (function, arg), = node.items()
        if function == "Fn::Not":
            return not self.truth(arg[0])
        if function == "Fn::Equals":
            return self.value(arg[0]) == self.value(arg[1])
        if function == "Condition":
            return self.condition(arg)
        raise KeyError(f"no stand-in for condition {function}")


def role_statements(template, resolver, function):
    """Every statement of the function's role: its inline policies and the role policies
    the template attaches to it when their conditions hold."""
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    found = []
    for policy in template["Resources"][role]["Properties"].get("Policies", []):
        found += policy["PolicyDocument"]["Statement"]
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::RolePolicy":
            continue
        if resource["Properties"]["RoleName"] != {"Ref": role}:
            continue
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found


BATCH_ACTIONS = {
    "sns:Publish": "sns:PublishBatch",
    "sqs:SendMessage": "sqs:SendMessageBatch",
    "sqs:DeleteMessage": "sqs:DeleteMessageBatch",
    "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
}


def moto_policy(statements, resolver):
    """The role's policy as moto can enforce it. moto matches SQS calls against the queue's
    ARN and every other service's calls against "*", so the resources of the others
    become "*" (check_template.py checks those resources). IAM has no action of its own
    for a DynamoDB transaction (it authorises each write or read in it) nor for SNS's and
    SQS's batch calls (PublishBatch needs sns:Publish), while moto asks for the call's own
    name: a statement allowing the single actions allows those too."""
    out = []
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        actions = list(actions)
        writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}
        if writes & set(actions):
            actions.append("dynamodb:TransactWriteItems")
        if "dynamodb:GetItem" in actions:
            actions.append("dynamodb:TransactGetItems")
        # Batch calls IAM authorises by the single action (moto asks for the batch's name).
        for single, batch in BATCH_ACTIONS.items():
            if single in actions:
                actions.append(batch)
        resources = resolver.value(statement["Resource"])
        if not all(a.startswith("sqs:") for a in actions):
            resources = "*"
        out.append({"Effect": statement["Effect"], "Action": actions, "Resource": resources})
    return {"Version": "2012-10-17", "Statement": out}


# ------------------------------------------------------------------ the Lambda runtime API


class Runtime:
    """A stand-in for the Lambda runtime API of one function instance: hands out the
    invocations put to it and collects their answers."""

    def __init__(self, name, timeout_secs):
        self.name = name
        self.timeout_secs = timeout_secs
        self.pending = queue.Queue()
        self.answers = {}
        self.answered = threading.Condition()
        self.init_error = None
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != "/2018-06-01/runtime/invocation/next":
                    self.send_error(404)
                    return
                request_id, payload = runtime.pending.get()
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                deadline = int((time.time() + runtime.timeout_secs) * 1000)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline))
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PREFIX}-{runtime.name}:live",
                )
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = self.path.strip("/").split("/")
                if parts[-2:] == ["init", "error"]:
                    runtime.init_error = body.decode(errors="replace")
                elif len(parts) == 5 and parts[2] == "invocation":
                    with runtime.answered:
                        runtime.answers[parts[3]] = (parts[4], body.decode(errors="replace"))
                        runtime.answered.notify_all()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self):
        return f"127.0.0.1:{self.server.server_address[1]}"

    def invoke(self, payload, wait_secs=120):
        request_id = str(uuid.uuid4())
        self.pending.put((request_id, payload))
        end = time.time() + wait_secs
        with self.answered:
            while request_id not in self.answers:
                if self.init_error or time.time() > end:
                    return "error", self.init_error or f"no answer within {wait_secs} s"
                self.answered.wait(timeout=0.5)
            return self.answers[request_id]


class Function:
    """One artifact running under qemu with its role's credentials and its environment."""

    def __init__(self, logical, binary, env, keys, endpoint, timeout_secs, logs):
        self.logical = logical
        self.runtime = Runtime(logical, timeout_secs)
        self.log_path = logs / f"{binary}.log"
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": self.runtime.address,
            "AWS_LAMBDA_FUNCTION_NAME": f"{PREFIX}-{logical}",
            "AWS_LAMBDA_FUNCTION_VERSION": "1",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{PREFIX}-{logical}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "check",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": keys["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"],
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        environment.update({k: str(v) for k, v in env.items() if v is not None})
        qemu = shutil.which("qemu-aarch64") or "qemu-aarch64"
        self.process = subprocess.Popen(
            [qemu, "-L", "/usr/aarch64-linux-gnu", str(ROOT / "target" / "lambda" / binary / "bootstrap")],
            env=environment,
            stdout=open(self.log_path, "wb"),
            stderr=subprocess.STDOUT,
        )

    def invoke(self, payload, wait_secs=180):
        kind, body = self.runtime.invoke(payload, wait_secs)
        log = self.log()
        user = f"user/{PREFIX}-{self.logical} "
        denied = [line for line in (DENIED.read_text().splitlines() if DENIED.exists() else []) if user in line]
        check(f"{self.logical}: every call its code made is allowed by its role", not denied,
              "\n".join(sorted(set(denied))[:10]))
        check(f"{self.logical}: the invocation succeeded", kind == "response", body[:2000] + "\n" + log[-3000:])
        return json.loads(body) if body else None

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self):
        self.process.kill()
        self.process.wait()


# ------------------------------------------------------------------ events as AWS sends them


def url_event(method, path, headers=None, body=None, cookies=None):
    """A Lambda function URL request (payload format 2.0), as CloudFront forwards it."""
    raw_path, _, query = path.partition("?")
    headers = {"host": "abc.lambda-url.us-east-1.on.aws", "user-agent": "check", **(headers or {})}
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abc",
            "domainName": "abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7", "userAgent": "check"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": datetime.utcnow().strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if body is not None:
        event["body"] = body
    return event


def response_body(response):
    body = response.get("body") or ""
    return base64.b64decode(body).decode() if response.get("isBase64Encoded") else body


def stream_event(records, stream_arn):
    """DynamoDB stream records as Lambda hands them to a function."""
    out = []
    for record in records:
        record = json.loads(json.dumps(record, default=str))
        change = record["dynamodb"]
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, str):
            change["ApproximateCreationDateTime"] = datetime.fromisoformat(created).timestamp()
        record["eventSourceARN"] = stream_arn
        out.append(record)
    return {"Records": out}


def sqs_event(messages, queue_arn):
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount", "1"),
                               "SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", "0")},
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def drain(sqs, url, want=1, wait_secs=20):
    """Receives what the queue holds (as the event source mapping would) and deletes it."""
    got, end = [], time.time() + wait_secs
    while time.time() < end:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                     AttributeNames=["All"])
        for message in answer.get("Messages", []):
            got.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if len(got) >= want and not answer.get("Messages"):
            break
    return got


class StreamReader:
    """Reads the table's stream from the start, as the stream's event source mapping does."""

    def __init__(self, streams, stream_arn):
        self.streams = streams
        self.stream_arn = stream_arn
        shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
        self.iterators = [
            streams.get_shard_iterator(StreamArn=stream_arn, ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            for s in shards
        ]

    def read(self):
        records = []
        for i, iterator in enumerate(self.iterators):
            answer = self.streams.get_records(ShardIterator=iterator)
            records += answer["Records"]
            self.iterators[i] = answer.get("NextShardIterator", iterator)
        return records


# ------------------------------------------------------------------ the check


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engage", required=True, help="the release `engage` binary (host)")
    args = parser.parse_args()
    engage = Path(args.engage)

    print("deploy/check_artifacts.py: the arm64 Lambda artifacts")
    for binary in FUNCTIONS.values():
        path = ROOT / "target" / "lambda" / binary / "bootstrap"
        header = path.read_bytes()[:20] if path.exists() else b""
        check(f"{binary}: an arm64 Linux executable", header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183,
              f"({path})")

    work = Path(tempfile.mkdtemp(prefix="engage-artifacts-"))
    moto = None
    functions = []
    try:
        site = work / "site"
        exported = subprocess.run([str(engage), "site", "export", "--dir", str(site)], capture_output=True, text=True)
        check("the release binary exports the site for the assets bucket", exported.returncode == 0, exported.stderr)
        bundle = sorted(p.name for p in (site / "pkg").glob("engage-*.js"))
        check("the exported bundle carries a content hash in its name", len(bundle) == 1 and re.fullmatch(r"engage-[0-9a-f]{16}\.js", bundle[0]), str(bundle))

        # moto with IAM enforcement: the first three calls (the admin user) go unchecked.
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        moto = subprocess.Popen([sys.executable, "-c", MOTO_NOTING_DENIALS % str(DENIED), "-H", "127.0.0.1", "-p", str(port)],
                                env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"},
                                stdout=subprocess.DEVNULL, stderr=open(work / "moto.log", "wb"))
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        config = Config(retries={"max_attempts": 2})
        iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                           aws_secret_access_key="testing", config=config)
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="all",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        admin = iam.create_access_key(UserName="admin")["AccessKey"]
        session = boto3.Session(aws_access_key_id=admin["AccessKeyId"], aws_secret_access_key=admin["SecretAccessKey"], region_name=REGION)
        client = lambda service: session.client(service, endpoint_url=endpoint, config=config)  # noqa: E731
        iam = client("iam")
        def refused(call):
            try:
                call()
            except ClientError as error:
                return (error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
                        or error.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException", "InvalidClientTokenId"))
            return False

        stranger = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="nobody",
                                aws_secret_access_key="x", config=config)
        check("moto enforces IAM (unknown credentials are refused)", refused(stranger.list_queues))

        operator_env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": admin["AccessKeyId"],
                        "AWS_SECRET_ACCESS_KEY": admin["SecretAccessKey"], "ENGAGE_BACKEND": "aws", "ENGAGE_AWS_PREFIX": PREFIX}

        def operator(*arguments, stdin=""):
            done = subprocess.run([str(engage), *arguments], input=stdin, capture_output=True, text=True, env=operator_env, cwd=work)
            check(f"engage {' '.join(arguments[:2])} (the operator, on the deployed resources)", done.returncode == 0, done.stdout + done.stderr)
            return done.stdout

        operator("aws", "bootstrap", "--visibility-timeout-secs", "540")
        operator("stylist", "add", "--id", "st-maya", "--name", "Maya Okafor", "--email", f"maya@{SENDER_IDENTITY}")
        key = operator("apikey", "create", "--name", "artifact check", "--role", "admin").strip().splitlines()[-1].strip()
        operator("user", "add", "--email", f"admin@{SENDER_IDENTITY}", "--role", "admin", stdin="a long enough password\n")
        client("sesv2").create_email_identity(EmailIdentity=SENDER_IDENTITY)

        template = yaml_parse(TEMPLATE.read_text())
        parameters = {"Prefix": PREFIX, "OpenRouterSecretArn": "", "PublicUrl": "https://engage.salon.example", "AlarmEmail": "",
                      "ProxySecret": "", "SenderIdentity": SENDER_IDENTITY, "SesConfigurationSet": "",
                      # Every welcome the check expects is drafted; win-backs keep a holdout.
                      "Holdout": "welcome=0,win_back=0.1", "AttributionWindowDays": 30,
                      "LinkHosts": SENDER_IDENTITY, "OpenPixel": "true",
                      "TimeZone": "Europe/London", "QuietHours": "21-8", "SendHour": 10}
        resolver = Resolver(template, endpoint, parameters)
        globals_env = template["Globals"]["Function"]["Environment"]["Variables"]
        logs = work / "logs"
        logs.mkdir()
        running, credentials = {}, {}
        for logical, binary in FUNCTIONS.items():
            props = template["Resources"][logical]["Properties"]
            user = f"{PREFIX}-{logical}"
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="role",
                                PolicyDocument=json.dumps(moto_policy(role_statements(template, resolver, logical), resolver)))
            keys = iam.create_access_key(UserName=user)["AccessKey"]
            credentials[logical] = keys
            env = {**globals_env, **props.get("Environment", {}).get("Variables", {})}
            env = {k: resolver.value(v) for k, v in env.items()}
            env["ENGAGE_AWS_PREFIX"] = PREFIX
            env["RUST_LOG"] = "info"
            function = Function(logical, binary, env, keys, endpoint, props.get("Timeout", 3), logs)
            functions.append(function)
            running[logical] = function
        web, stream, email, views, rescore = (running[n] for n in FUNCTIONS)

        as_web = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION, config=config,
                              aws_access_key_id=credentials["WebFunction"]["AccessKeyId"],
                              aws_secret_access_key=credentials["WebFunction"]["SecretAccessKey"])
        check("each function holds only its role: the web function may not scan the table",
              refused(lambda: as_web.scan(TableName=f"{PREFIX}-records")))
        DENIED.unlink(missing_ok=True)  # that refusal was the point; from here any is a fault

        # The web function: the sign-in page and its bundle.
        page = web.invoke(url_event("GET", "/signin", {"accept": "text/html"}))
        html = response_body(page)
        check("web: the sign-in page renders", page["statusCode"] == 200 and "<form" in html, html[:500])
        asked = sorted(set(re.findall(r'/pkg/(engage-[0-9a-f]{16}\.(?:js|wasm|css))"', html)))
        check("web: the page asks for the bundle's js, wasm and css by their hashed names",
              [Path(a).suffix for a in asked] == [".css", ".js", ".wasm"], str(asked))
        check("web: every bundle file the page asks for is in the site export (the assets bucket)",
              all((site / "pkg" / a).exists() for a in asked), f"{asked} vs {sorted(os.listdir(site / 'pkg'))}")
        check("web: no wasm-pack name (engage_bg.wasm) is asked for", "_bg.wasm" not in html)

        # A client through the REST API, with the manager's key.
        auth = {"authorization": f"Bearer {key}", "content-type": "application/json", "accept": "application/json"}
        created = web.invoke(url_event("POST", "/api/v1/clients", auth, json.dumps({
            "name": "Ada Lovelace", "email": "ada@example.com", "stylist_id": "st-maya",
            "profile": {"email_opt_in": True, "signed_up_on": datetime.utcnow().date().isoformat()}})))
        check("web: a client is created through the REST API", created["statusCode"] == 201, response_body(created))
        client_id = json.loads(response_body(created))["id"]

        # The stream function turns the table's changes into events on the topic.
        streams = client("dynamodbstreams")
        stream_arn = client("dynamodb").describe_table(TableName=f"{PREFIX}-records")["Table"]["LatestStreamArn"]
        reader = StreamReader(streams, stream_arn)
        records = reader.read()
        check("the table's stream carries the new client", any(r["eventName"] == "INSERT" for r in records), str(len(records)))
        answer = stream.invoke(stream_event(records, stream_arn))
        check("stream: no record failed", answer.get("batchItemFailures") == [], json.dumps(answer))

        sqs = client("sqs")
        events_url = resolver.physical("EventsQueue")
        views_url = resolver.physical("ViewsQueue")
        deliveries_url = resolver.physical("DeliveriesQueue")
        messages = drain(sqs, events_url)
        check("the topic delivered the client's events to the events queue", len(messages) >= 1, str(len(messages)))
        answer = email.invoke(sqs_event(messages, resolver.attribute("EventsQueue", "Arn")))
        check("email: every event handled", answer.get("batchItemFailures") == [], json.dumps(answer))
        emails = json.loads(response_body(web.invoke(url_event("GET", f"/api/v1/clients/{client_id}/emails", auth))))
        drafts = [e for e in emails if e["status"] == "drafted"]
        check("email: the welcome draft was written", len(drafts) == 1, json.dumps(emails))

        # The scored client and its draft reach the stream: view facts for the dashboard.
        answer = stream.invoke(stream_event(reader.read(), stream_arn))
        check("stream: the score's and the draft's changes published", answer.get("batchItemFailures") == [], json.dumps(answer))
        facts = drain(sqs, views_url, want=2)
        check("the topic delivered the view facts (client counted, draft written) to the views queue", len(facts) >= 2, str(len(facts)))
        answer = views.invoke(sqs_event(facts, resolver.attribute("ViewsQueue", "Arn")))
        check("views: every fact applied", answer.get("batchItemFailures") == [], json.dumps(answer))
        drain(sqs, events_url, want=0, wait_secs=3)  # the score change's own events: nothing to draft
        approved = web.invoke(url_event("POST", f"/api/v1/emails/{drafts[0]['id']}/approve", auth, "{}"))
        check("web: the draft is approved", approved["statusCode"] == 200, response_body(approved))
        answer = stream.invoke(stream_event(reader.read(), stream_arn))
        check("stream: the approval published", answer.get("batchItemFailures") == [], json.dumps(answer))
        requests = drain(sqs, deliveries_url)
        check("the approval is a delivery request on the deliveries queue", len(requests) == 1, str(len(requests)))
        facts = drain(sqs, views_url)
        answer = views.invoke(sqs_event(facts, resolver.attribute("ViewsQueue", "Arn")))
        check("views: the review step counted", len(facts) >= 1 and answer.get("batchItemFailures") == [], json.dumps(answer))
        answer = email.invoke(sqs_event(requests, resolver.attribute("DeliveriesQueue", "Arn")))
        check("email: the delivery succeeded", answer.get("batchItemFailures") == [], json.dumps(answer) + email.log()[-2000:])
        quota = client("ses").get_send_quota()
        check("SES sent one email from the sender identity", int(quota["SentLast24Hours"]) == 1, json.dumps(quota, default=str))
        detail = json.loads(response_body(web.invoke(url_event("GET", f"/api/v1/emails/{drafts[0]['id']}", auth))))
        check("web: the email reads sent", detail["summary"]["status"] == "sent", json.dumps(detail)[:500])

        # A second client's draft, and a stylist's request for a new wording: the web
        # function publishes it to the topic, the email function rewrites the draft.
        created = web.invoke(url_event("POST", "/api/v1/clients", auth, json.dumps({
            "name": "Grace Hopper", "email": "grace@example.com", "stylist_id": "st-maya",
            "profile": {"email_opt_in": True, "signed_up_on": datetime.utcnow().date().isoformat()}})))
        check("web: a second client is created", created["statusCode"] == 201, response_body(created))
        grace = json.loads(response_body(created))["id"]
        stream.invoke(stream_event(reader.read(), stream_arn))
        email.invoke(sqs_event(drain(sqs, events_url), resolver.attribute("EventsQueue", "Arn")))
        second = [e for e in json.loads(response_body(web.invoke(url_event("GET", f"/api/v1/clients/{grace}/emails", auth))))
                  if e["status"] == "drafted"]
        check("email: the second client's draft was written", len(second) == 1, str(second))
        asked = web.invoke(url_event("POST", f"/api/v1/emails/{second[0]['id']}/regenerate", auth,
                                     json.dumps({"instruction": "Mention the autumn coats"})))
        check("web: a new wording is asked for (published to the topic)", asked["statusCode"] == 202, response_body(asked))
        requested = drain(sqs, events_url)
        check("the redraft request reaches the events queue", any("redraft_requested" in m["Body"] for m in requested),
              str([m["Body"][:80] for m in requested]))
        answer = email.invoke(sqs_event(requested, resolver.attribute("EventsQueue", "Arn")))
        check("email: the draft rewritten", answer.get("batchItemFailures") == [], json.dumps(answer))
        detail = json.loads(response_body(web.invoke(url_event("GET", f"/api/v1/emails/{second[0]['id']}", auth))))
        check("web: the rewrite is on the email's record", any(r.get("action") == "redrafted" for r in detail.get("reviews", [])),
              json.dumps(detail.get("reviews"))[:600])

        # An admin signs in to the pages (a session in the table, a cookie back).
        signed_in = web.invoke(url_event("POST", "/signin", {"content-type": "application/x-www-form-urlencoded"},
                                         f"email=admin%40{SENDER_IDENTITY}&password=a+long+enough+password"))
        cookie = next((c.split(";")[0] for c in signed_in.get("cookies", []) if c.startswith("engage_session=")), None)
        check("web: an admin signs in and gets a session cookie", signed_in["statusCode"] == 303 and cookie, json.dumps(signed_in)[:400])
        # What the app reads, each through the web function's own role.
        pages = ["/", f"/clients/{client_id}", "/emails", f"/emails/{second[0]['id']}", "/dashboard", "/dlq", "/api-keys"]
        for path in pages:
            answer = web.invoke(url_event("GET", path, {"accept": "text/html"}, cookies=[cookie]))
            check(f"web: the page {path} renders", answer["statusCode"] == 200, f"{answer['statusCode']} {response_body(answer)[:300]}")
        for path in ["/api/v1/clients", f"/api/v1/clients/{client_id}", f"/api/v1/clients/{client_id}/score",
                     "/api/v1/emails?status=drafted", "/api/v1/api-keys", "/api/v1/pipeline"]:
            answer = web.invoke(url_event("GET", path, auth))
            check(f"web: GET {path} answers", answer["statusCode"] == 200, f"{answer['statusCode']} {response_body(answer)[:300]}")
        ready = web.invoke(url_event("GET", "/readyz"))
        check("web: /readyz answers ready (the queues' figures through its role)", ready["statusCode"] == 200, response_body(ready)[:300])

        # The daily rescore, as EventBridge Scheduler starts it.
        report = rescore.invoke({"source": "aws.scheduler", "detail-type": "Scheduled Event"})
        check("rescore: one rescore queued for each of the two clients",
              re.search(r"Queued 2 rescore\(s\) as of \S+ for 2 client", (report or {}).get("report", "")) is not None,
              json.dumps(report))
        queued = drain(sqs, events_url)
        check("rescore: their events are on the events queue", sum("rescore_requested" in m["Body"] for m in queued) == 2, str([m["Body"][:80] for m in queued]))
        answer = email.invoke(sqs_event(queued, resolver.attribute("EventsQueue", "Arn")))
        check("email: the rescore handled", answer.get("batchItemFailures") == [], json.dumps(answer))

        dashboard = web.invoke(url_event("GET", "/api/v1/dashboard", auth))
        figures = json.loads(response_body(dashboard)) if dashboard["statusCode"] == 200 else {}
        maya = next((f for f in figures.get("stylists", []) if f["stylist_id"] == "st-maya"), {})
        drafted = sum(day["drafted"] for day in figures.get("email_days", []))
        approved = sum(day["approved"] for day in figures.get("email_days", []))
        check("web: the dashboard counts what the views function applied (1 client, 1 drafted, 1 approved)",
              maya.get("clients") == 1 and drafted == 1 and approved == 1, response_body(dashboard)[:800])
        letters = web.invoke(url_event("GET", "/api/v1/dead-letters", auth))
        check("web: the dead letters read from the DLQ", letters["statusCode"] == 200, response_body(letters)[:500])
    finally:
        for function in functions:
            function.stop()
        if moto:
            moto.kill()
            moto.wait()
        if os.environ.get("ENGAGE_KEEP_CHECK_LOGS"):
            shutil.copy(DENIED, work) if DENIED.exists() else None
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        DENIED.unlink(missing_ok=True)

    print(f"deploy/check_artifacts.py: {len(checks)} checks passed on the five arm64 artifacts")


if __name__ == "__main__":
    main()
