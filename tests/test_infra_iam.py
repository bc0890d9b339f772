"""The writer policy is sufficient and minimal: resources by policy evaluation, actions by moto.

(a) moto's IAM policy evaluator reads the synthesized writer document (pseudo parameters filled
in) against the exact ARNs the handler's calls touch. (b) A moto server that enforces IAM runs
the real handler with credentials that hold only the writer's actions: delivery works, anything
else is denied. moto checks logs actions against the resource "*" only, hence the two halves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.iam.access_control import IAMPolicy, PermissionResult

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
from aws_cloudwatch_logs_handler.cdk import WRITER_ACTIONS
from infra.app import build_app, cdk_json_context
from infra.config import infra_config_from_context
from infra.local_endpoint import LocalEndpoint, running_local_endpoint

pytestmark = pytest.mark.slow  # one synth and one IAM-enforcing moto server for the module

CONTEXT = cdk_json_context()
CONFIG = infra_config_from_context(CONTEXT)
NAMES = [group.name for group in CONFIG.log_groups]
ACCOUNT = "123456789012"
AWS = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": ACCOUNT}
CHINA = {"AWS::Partition": "aws-cn", "AWS::Region": "cn-north-1", "AWS::AccountId": ACCOUNT}
# Stream names as the handler makes them: the dated-UUID default and the Lambda form.
STREAMS = (
    "stream/2026/11/24/0653/0b6b7c4e-7d1f-4f57-9b8e-2f0c3f1f7a11",
    "2026/11/24/sample/[$LATEST]0123456789abcdef0123456789abcdef",
)


@dataclass(frozen=True)
class WriterDocument:
    """The writer's policy document as synthesized, and the group name behind each logical id."""

    document: dict[str, Any]
    group_names: Mapping[str, str]


def _render(value: Any, pseudo: Mapping[str, str], groups: Mapping[str, str]) -> Any:
    """Resolve a template value as CloudFormation would on deploy.

    Pseudo parameters are filled in, and a log group's ``Arn`` attribute becomes the ARN
    CloudFormation documents for it: ``arn:<partition>:logs:<region>:<account>:log-group:NAME:*``.
    """
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in pseudo:
            return pseudo[value["Ref"]]
        if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][1] == "Arn":
            return f"{_group_arn(groups[value['Fn::GetAtt'][0]], pseudo)}:*"
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(str(_render(part, pseudo, groups)) for part in parts)
        return {key: _render(item, pseudo, groups) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, pseudo, groups) for item in value]
    return value


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory) -> WriterDocument:
    """The writer policy document of one in-process synth of the app, as the template has it."""
    app, stack = build_app(context=CONTEXT, outdir=str(tmp_path_factory.mktemp("cdk")))
    assembly = app.synth()
    template = json.loads(
        Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path).read_text()
    )
    writer_id = stack.resolve(stack.writer.policy.node.default_child.logical_id)  # type: ignore[union-attr]
    groups = {
        logical_id: resource["Properties"]["LogGroupName"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Logs::LogGroup" and "LogGroupName" in resource["Properties"]
    }
    return WriterDocument(
        document=template["Resources"][writer_id]["Properties"]["PolicyDocument"],
        group_names=groups,
    )


@pytest.fixture(scope="module")
def writer_document(writer: WriterDocument) -> dict[str, Any]:
    """The writer policy document, unresolved."""
    return writer.document


def _permitted(writer: WriterDocument, pseudo: Mapping[str, str]) -> Callable[[str, str], bool]:
    policy = IAMPolicy(json.dumps(_render(writer.document, pseudo, writer.group_names)))
    return lambda action, arn: policy.is_action_permitted(action, arn) == PermissionResult.PERMITTED


def _stream_arn(name: str, stream: str, pseudo: Mapping[str, str] = AWS) -> str:
    return (
        f"arn:{pseudo['AWS::Partition']}:logs:{pseudo['AWS::Region']}:{pseudo['AWS::AccountId']}"
        f":log-group:{name}:log-stream:{stream}"
    )


def _group_arn(name: str, pseudo: Mapping[str, str] = AWS) -> str:
    return (
        f"arn:{pseudo['AWS::Partition']}:logs:{pseudo['AWS::Region']}:{pseudo['AWS::AccountId']}"
        f":log-group:{name}"
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("stream", STREAMS)
def test_writer_allows_stream_creation_and_delivery_on_its_groups(
    writer: WriterDocument, name: str, stream: str
) -> None:
    """CreateLogStream and PutLogEvents are allowed on every stream of every configured group."""
    permitted = _permitted(writer, AWS)
    for action in WRITER_ACTIONS:
        assert permitted(action, _stream_arn(name, stream))
        assert permitted(action, f"{_group_arn(name)}:*")


@pytest.mark.parametrize(
    "other",
    [
        "/some/other/group",
        f"{NAMES[0]}-other",  # shares the name as a prefix
        f"{NAMES[0]}/child",  # looks like a child folder of the group
        NAMES[0].upper(),  # names are case-sensitive
    ],
)
def test_writer_denies_every_other_group(writer: WriterDocument, other: str) -> None:
    """A group outside the configuration, even one with a configured name as prefix, is denied."""
    permitted = _permitted(writer, AWS)
    for action in WRITER_ACTIONS:
        assert not permitted(action, _stream_arn(other, STREAMS[0]))


def test_writer_denies_other_regions_and_accounts(writer: WriterDocument) -> None:
    """The ARNs carry the deployed stack's region and account, so nothing else is reached."""
    permitted = _permitted(writer, AWS)
    elsewhere = [
        {**AWS, "AWS::Region": "eu-west-1"},
        {**AWS, "AWS::AccountId": "210987654321"},
    ]
    for pseudo in elsewhere:
        assert not permitted("logs:PutLogEvents", _stream_arn(NAMES[0], STREAMS[0], pseudo))


def test_writer_takes_its_partition_from_the_stack(writer: WriterDocument) -> None:
    """Deployed in aws-cn, the policy names aws-cn ARNs (never a hard-coded 'aws')."""
    permitted = _permitted(writer, CHINA)
    assert permitted("logs:PutLogEvents", _stream_arn(NAMES[0], STREAMS[0], CHINA))
    assert not permitted("logs:PutLogEvents", _stream_arn(NAMES[0], STREAMS[0], AWS))


@pytest.mark.parametrize(
    "action",
    [
        "logs:CreateLogGroup",
        "logs:PutRetentionPolicy",
        "logs:DeleteLogGroup",
        "logs:DeleteLogStream",
        "logs:DescribeLogStreams",
        "logs:GetLogEvents",
        "logs:TagResource",
    ],
)
def test_writer_allows_nothing_beyond_delivery(writer: WriterDocument, action: str) -> None:
    """Creating groups, setting retention, deleting, describing and reading are all denied."""
    permitted = _permitted(writer, AWS)
    for arn in (_group_arn(NAMES[0]), f"{_group_arn(NAMES[0])}:*", "*"):
        assert not permitted(action, arn)


# --- (b) against a moto server that enforces IAM ------------------------------------------------


@dataclass(frozen=True)
class Keys:
    """An IAM user's access key pair."""

    access_key_id: str
    secret_access_key: str

    def session(self) -> boto3.session.Session:
        """Return a session that signs with these keys."""
        return boto3.session.Session(
            region_name=AWS["AWS::Region"],
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )


@dataclass(frozen=True)
class EnforcingEndpoint:
    """A moto server past its unauthenticated set-up, with a writer and an admin user."""

    endpoint: LocalEndpoint
    group: str
    writer: Keys
    admin: Keys

    def logs(self, keys: Keys) -> Any:
        """Return a CloudWatch Logs client for the endpoint signed with ``keys``."""
        return keys.session().client("logs", endpoint_url=self.endpoint.url)


def _user_with_policy(iam: Any, name: str, document: dict[str, Any]) -> Iterator[Callable[[], Any]]:
    yield lambda: iam.create_user(UserName=name)
    yield lambda: iam.put_user_policy(
        UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(document)
    )
    yield lambda: iam.create_access_key(UserName=name)


@pytest.fixture(scope="module")
def enforcing(
    writer_document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EnforcingEndpoint]:
    """Start moto with IAM enforced after exactly the set-up calls, then hand out the keys."""
    group = NAMES[0]
    # moto checks logs actions against "*" only, so the user gets the writer's actions on "*":
    # this half proves the actions suffice; the evaluator tests above prove the resources.
    writer_actions = sorted(
        {
            action
            for statement in writer_document["Statement"]
            for action in (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
        }
    )
    writer_only = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": writer_actions, "Resource": "*"}],
    }
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }

    def steps(admin_session: boto3.session.Session, url: str) -> list[Callable[[], Any]]:
        iam = admin_session.client("iam", endpoint_url=url)
        logs = admin_session.client("logs", endpoint_url=url)
        return [
            lambda: logs.create_log_group(logGroupName=group),
            *_user_with_policy(iam, "writer", writer_only),
            *_user_with_policy(iam, "admin", everything),
        ]

    set_up_calls = len(steps(boto3.session.Session(region_name="us-east-1"), "http://unused"))
    log = tmp_path_factory.mktemp("moto-iam") / "server.log"
    with running_local_endpoint(
        env={"INITIAL_NO_AUTH_ACTION_COUNT": str(set_up_calls)}, log_path=log
    ) as endpoint:
        bootstrap = Keys("AKIAIOSFODNN7EXAMPLE", "unauthenticated-set-up")
        results = [step() for step in steps(bootstrap.session(), endpoint.url)]
        keys = [
            Keys(
                result["AccessKey"]["AccessKeyId"],
                result["AccessKey"]["SecretAccessKey"],
            )
            for result in results
            if "AccessKey" in result
        ]
        yield EnforcingEndpoint(endpoint=endpoint, group=group, writer=keys[0], admin=keys[1])


@pytest.fixture
def writer_handler(
    enforcing: EnforcingEndpoint,
) -> Iterator[tuple[CloudWatchLogsHandler, list[str]]]:
    """A handler delivering with the writer's keys; closed after the test."""
    problems: list[str] = []
    handler = CloudWatchLogsHandler(
        enforcing.group,
        client=enforcing.logs(enforcing.writer),
        on_problem=problems.append,
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        yield handler, problems
    finally:
        handler.close()


def test_set_up_is_over_and_iam_is_enforced(enforcing: EnforcingEndpoint) -> None:
    """After the set-up calls, unknown keys are refused: the server really checks IAM now."""
    stranger = Keys("AKIAUNKNOWNKEY000000", "not-a-secret")
    with pytest.raises(ClientError) as raised:
        enforcing.logs(stranger).describe_log_groups()
    # moto answers a JSON-protocol service with IAM's XML error, so botocore only sees the status.
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "security token included in the request is invalid" in str(raised.value)


def test_handler_delivers_with_only_the_writer_actions(
    enforcing: EnforcingEndpoint, writer_handler: tuple[CloudWatchLogsHandler, list[str]]
) -> None:
    """With just CreateLogStream and PutLogEvents, every record reaches the pre-created group."""
    handler, problems = writer_handler
    logger = logging.getLogger("test_infra_iam.writer")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        messages = [f"record {index} delivered with the writer policy" for index in range(25)]
        for message in messages:
            logger.info(message)
        assert handler.flush(timeout_s=30)
    finally:
        logger.removeHandler(handler)
    events = enforcing.logs(enforcing.admin).get_log_events(
        logGroupName=enforcing.group, logStreamName=handler.log_stream_name, startFromHead=True
    )["events"]
    assert [event["message"] for event in events] == messages
    assert problems == []
    stats = handler.stats()
    assert stats.events_delivered == len(messages)
    assert not any(stats.dropped.values())


@pytest.mark.parametrize(
    ("action", "call"),
    [
        ("logs:DeleteLogGroup", lambda logs, group: logs.delete_log_group(logGroupName=group)),
        ("logs:CreateLogGroup", lambda logs, group: logs.create_log_group(logGroupName="/new")),
        (
            "logs:PutRetentionPolicy",
            lambda logs, group: logs.put_retention_policy(logGroupName=group, retentionInDays=1),
        ),
        ("logs:DescribeLogGroups", lambda logs, group: logs.describe_log_groups()),
    ],
)
def test_actions_outside_the_writer_are_denied(
    enforcing: EnforcingEndpoint, action: str, call: Callable[[Any, str], Any]
) -> None:
    """Deleting, creating, setting retention or listing with the writer's keys is denied."""
    with pytest.raises(ClientError) as raised:
        call(enforcing.logs(enforcing.writer), enforcing.group)
    # moto's AccessDenied comes as IAM's XML, so botocore sees the 403 and the text, not a code.
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert f"is not authorized to perform: {action}" in str(raised.value)
    groups = enforcing.logs(enforcing.admin).describe_log_groups()["logGroups"]
    assert enforcing.group in [group["logGroupName"] for group in groups]
