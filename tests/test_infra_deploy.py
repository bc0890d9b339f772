"""Deploying with the real CDK CLI: bootstrap and deploy to a local moto server, then look.

One deploy per module to a moto server subprocess, with every option on (the sample, the drop
alarm with its topic, and each per-group feature); every test reads what it created with boto3.
moto's CloudFormation skips the types it does not implement (see `MOTO_SKIPS`): the template
tests in test_infra_options pin those.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from aws_cloudwatch_logs_handler import __version__
from aws_cloudwatch_logs_handler.cdk import READER_GROUP_ACTIONS, WRITER_ACTIONS
from infra.app import cdk_json_context
from infra.config import infra_config_from_context
from infra.deploy import (
    FAKE_CREDENTIALS,
    LOCAL_REGION,
    aws_cli_env,
    cli_endpoint,
    deploy_local,
    local_cli_env,
)
from infra.local_endpoint import LocalEndpoint, running_local_endpoint
from infra.sample import HANDLER as SAMPLE_HANDLER
from infra.sample import LOG_GROUP_ENV
from infra.sample import SOURCE_DIR as SAMPLE_DIR
from lambda_layer.build import DEFAULT_OUT
from local_aws.lambda_runtime import LambdaRuntime, copy_function, unzip_layer

pytestmark = pytest.mark.slow  # deploys with the CDK CLI to a moto server

STREAM_NAME = "analytics"
FIREHOSE_ARN = f"arn:aws:firehose:{LOCAL_REGION}:123456789012:deliverystream/analytics"


def _every_option() -> dict[str, Any]:
    groups = [dict(group) for group in cdk_json_context()["log_groups"]]
    groups[0].update(
        metric_filters=[{"pattern": '{ $.level = "ERROR" }', "metric_name": "Errors"}],
        subscription={
            "destination_arn": f"arn:aws:kinesis:{LOCAL_REGION}:123456789012:stream/{STREAM_NAME}"
        },
        data_protection=["EmailAddress"],
        field_indexes=["requestId", "level"],
        query_definitions=[{"name": "errors", "filter": "level = 'ERROR'"}],
        deletion_protection=True,
    )
    groups[1]["subscription"] = {"destination_arn": FIREHOSE_ARN}
    return {"log_groups": groups, "sample": True, "drop_alarm": {"topic": "create"}}


CONTEXT = _every_option()
CONFIG = infra_config_from_context({**cdk_json_context(), **CONTEXT})
MOTO_SKIPS = frozenset(
    {
        "AWS::CloudWatch::Alarm",
        "AWS::Logs::MetricFilter",
        "AWS::Logs::QueryDefinition",
        "AWS::Logs::SubscriptionFilter",
        "AWS::SNS::TopicPolicy",
    }
)
"""Resource types moto 5.2.5's CloudFormation does not implement: it skips them with a warning."""


@dataclass(frozen=True)
class Deployed:
    """The endpoint the stack was deployed to, a session for it, and how long deploying took."""

    endpoint: LocalEndpoint
    session: boto3.session.Session
    seconds: float
    assembly: Path

    def client(self, service: str) -> Any:
        """Return a client for ``service`` on the local endpoint."""
        return self.session.client(service, endpoint_url=self.endpoint.url)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """Start a moto server, run `cdk bootstrap` and `cdk deploy` on it, keep it for the module."""
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with running_local_endpoint(log_path=log) as endpoint:
        session = boto3.session.Session(
            region_name=LOCAL_REGION,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        # The subscription's destination exists, as it must in a real account.
        session.client("kinesis", endpoint_url=endpoint.url).create_stream(
            StreamName=STREAM_NAME, ShardCount=1
        )
        started = time.perf_counter()
        assembly = tmp_path_factory.mktemp("cdk") / "cdk.out"
        deploy_local(
            endpoint.url,
            context={
                key: value if isinstance(value, str) else json.dumps(value)
                for key, value in CONTEXT.items()
            },
            output=assembly,
        )
        yield Deployed(
            endpoint=endpoint,
            session=session,
            seconds=time.perf_counter() - started,
            assembly=assembly,
        )


@pytest.mark.slow
def test_stack_is_created(deployed: Deployed) -> None:
    """The CLI's deploy leaves the stack in CREATE_COMPLETE on the endpoint."""
    (stack,) = deployed.client("cloudformation").describe_stacks(StackName=CONFIG.stack_name)[
        "Stacks"
    ]
    assert stack["StackStatus"] == "CREATE_COMPLETE"


@pytest.mark.slow
def test_only_the_types_moto_does_not_implement_are_missing(deployed: Deployed) -> None:
    """Every resource deploys except the types moto's CloudFormation skips (pinned by templates)."""
    cloudformation = deployed.client("cloudformation")
    template = json.loads(
        (deployed.assembly / f"{CONFIG.stack_name}.template.json").read_text(encoding="utf-8")
    )
    declared = {resource["Type"] for resource in template["Resources"].values()}
    created = {
        resource["ResourceType"]
        for resource in cloudformation.list_stack_resources(StackName=CONFIG.stack_name)[
            "StackResourceSummaries"
        ]
    }
    assert declared - created == MOTO_SKIPS
    assert {"AWS::SNS::Topic", "AWS::IAM::Role", "AWS::Lambda::Function"} <= created


@pytest.mark.slow
def test_the_alarm_topic_and_the_subscription_roles_exist(deployed: Deployed) -> None:
    """The drop alarm's topic exists, and one role per subscription, assumed by logs only."""
    (topic,) = deployed.client("sns").list_topics()["Topics"]
    assert "DropAlarmTopic" in topic["TopicArn"]
    trusted_by_logs = [
        role
        for role in deployed.client("iam").list_roles()["Roles"]
        if "logs.amazonaws.com" in json.dumps(role["AssumeRolePolicyDocument"])
    ]
    assert len(trusted_by_logs) == 2


@pytest.mark.slow
def test_every_group_exists_with_its_retention(deployed: Deployed) -> None:
    """Each configured group exists, with its retention in days or none for "never"."""
    groups = {
        group["logGroupName"]: group
        for group in deployed.client("logs").describe_log_groups()["logGroups"]
    }
    for config in CONFIG.log_groups:
        assert config.name in groups
        assert groups[config.name].get("retentionInDays") == config.retention_days


@pytest.mark.slow
def test_every_group_carries_its_tags(deployed: Deployed) -> None:
    """The tags declared per group are on the deployed group."""
    client = deployed.client("logs")
    for config in CONFIG.log_groups:
        tags = client.list_tags_log_group(logGroupName=config.name)["tags"]
        assert dict(config.tags).items() <= tags.items()


def _policy_document(deployed: Deployed, name_part: str) -> dict[str, Any]:
    iam = deployed.client("iam")
    (policy,) = [
        policy
        for policy in iam.list_policies(Scope="Local")["Policies"]
        if name_part in policy["PolicyName"]
    ]
    version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])[
        "PolicyVersion"
    ]
    document = version["Document"]
    return json.loads(document) if isinstance(document, str) else dict(document)


@pytest.mark.slow
def test_writer_policy_exists_with_the_groups_resolved_into_its_arns(deployed: Deployed) -> None:
    """The deployed writer allows exactly its two actions on each group's ARN in this account."""
    (statement,) = _policy_document(deployed, "WriterPolicy")["Statement"]
    assert statement["Action"] == list(WRITER_ACTIONS)
    # The resources are the groups' Arn attributes. CloudFormation documents that attribute
    # with the trailing ':*' (covering the streams); moto 5.2.5 returns it without
    # (logs/models.py, get_cfn_attribute), so here the ARNs end at the group's name.
    # test_infra_iam checks the ':*' form against the policy evaluator.
    assert sorted(statement["Resource"]) == sorted(
        f"arn:aws:logs:{LOCAL_REGION}:123456789012:log-group:{group.name}"
        for group in CONFIG.log_groups
    )


@pytest.mark.slow
def test_reader_policy_exists(deployed: Deployed) -> None:
    """The deployed reader holds the read and query actions."""
    statements = _policy_document(deployed, "ReaderPolicy")["Statement"]
    assert statements[0]["Action"] == sorted(READER_GROUP_ACTIONS)


@pytest.mark.slow
def test_creator_policy_is_absent_by_default(deployed: Deployed) -> None:
    """Without creator_policy in the context, no policy can create groups."""
    names = [
        policy["PolicyName"]
        for policy in deployed.client("iam").list_policies(Scope="Local")["Policies"]
    ]
    assert not [name for name in names if "CreatorPolicy" in name]


@pytest.mark.slow
def test_layer_exists_with_its_runtimes_and_version(deployed: Deployed) -> None:
    """One layer version exists, described with the package version, for python3.10-3.14."""
    (layer,) = [
        layer
        for layer in deployed.client("lambda").list_layers()["Layers"]
        if "HandlerLayer" in layer["LayerName"]
    ]
    latest = layer["LatestMatchingVersion"]
    assert latest["Description"].startswith(f"aws-cloudwatch-logs-handler {__version__}:")
    assert latest["CompatibleRuntimes"] == [f"python3.{minor}" for minor in range(10, 15)]


@pytest.mark.slow
def test_sample_function_exists(deployed: Deployed) -> None:
    """The sample function exists and knows which configured group to deliver to."""
    (function,) = deployed.client("lambda").list_functions()["Functions"]
    assert function["Runtime"] == "python3.12"
    assert function["Handler"] == "sample_handler.handler"
    assert function["Environment"]["Variables"] == {"SAMPLE_LOG_GROUP": CONFIG.log_groups[0].name}
    # moto's CloudFormation drops a function's Layers and LoggingConfig (moto 5.2.5,
    # awslambda/models.py); test_infra_template pins both in the template instead.


@pytest.mark.slow
def test_created_keys_exist_and_rotate(deployed: Deployed) -> None:
    """One key per group with kms "create" exists, with rotation on."""
    kms = deployed.client("kms")
    keys = kms.list_keys()["Keys"]
    # The bootstrap stack makes no key of its own (it uses the AWS managed one), so every key
    # here is ours. DescribeKey cannot tell which: moto 5.2.5 keeps a key policy from
    # CloudFormation as a dict and then fails to json.loads it (500) in kms/policy_validator.py.
    assert len(keys) == len([group for group in CONFIG.log_groups if group.kms == "create"])
    for key in keys:
        assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    # Nor does moto's CloudFormation pass KmsKeyId on to the group; the template test pins it.


@pytest.mark.slow
def test_sample_function_code_delivers_into_its_deployed_group(
    deployed: Deployed, tmp_path: Path
) -> None:
    """The sample function under awslambdaric, with the library from the layer, fills its group.

    The runtime is frozen the moment it posts the response; the records must already be there.
    """
    layer_python = unzip_layer(DEFAULT_OUT, tmp_path / "opt")
    module = SAMPLE_HANDLER.partition(".")[0]
    copy_function(SAMPLE_DIR / f"{module}.py", tmp_path / "task", module_name=module)
    with LambdaRuntime(
        tmp_path / "task",
        handler=SAMPLE_HANDLER,
        layer_python_dir=layer_python,
        endpoint_url=deployed.endpoint.url,
        function_name="sample",
        log_path=tmp_path / "runtime.log",
        extra_env={LOG_GROUP_ENV: CONFIG.log_groups[0].name},
    ) as runtime:
        result = runtime.invoke({"messages": ["one", "two"]})
        assert result.json()["logged"] == 2, result
        logs = deployed.client("logs")
        streams = [
            stream["logStreamName"]
            for stream in logs.describe_log_streams(logGroupName=CONFIG.log_groups[0].name)[
                "logStreams"
            ]
            if stream["logStreamName"].endswith(result.request_id)
        ]
        assert len(streams) == 1
        messages = [
            event["message"]
            for event in logs.get_log_events(
                logGroupName=CONFIG.log_groups[0].name,
                logStreamName=streams[0],
                startFromHead=True,
            )["events"]
        ]
    assert messages == ["sample function initialised", "one", "two"]


@pytest.mark.slow
def test_deploy_takes_well_under_the_cli_timeout(deployed: Deployed) -> None:
    """Bootstrap and deploy together finish within two minutes against moto."""
    assert deployed.seconds < 120


def test_local_deploys_never_carry_the_callers_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A local deploy runs with fake keys and no profile, whatever the caller's environment has."""
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "real-session")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://s3.example.com")
    env = local_cli_env("http://127.0.0.1:4566")
    assert env["AWS_ACCESS_KEY_ID"] == FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]
    assert "AWS_PROFILE" not in env
    assert "AWS_SESSION_TOKEN" not in env
    assert "AWS_ENDPOINT_URL_S3" not in env
    assert env["AWS_ENDPOINT_URL"] == "http://localhost:4566"


def test_aws_target_drops_endpoint_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """--target aws never sends the CLI to a local endpoint left in the environment."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", "http://localhost:4566")
    assert not [name for name in aws_cli_env() if name.startswith("AWS_ENDPOINT_URL")]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:5000", "http://localhost:5000"),
        ("http://localhost:5000", "http://localhost:5000"),
        ("http://moto.internal:5000", "http://moto.internal:5000"),
    ],
)
def test_loopback_addresses_reach_the_cli_as_localhost(url: str, expected: str) -> None:
    """The CLI gets loopback as `localhost` (its deploy fails on 127.0.0.1), others as given."""
    assert cli_endpoint(url) == expected
