"""The synthesized template: what `cdk synth` produces from cdk.json, pinned resource by resource.

One real-CLI synth per module (with `-c creator_policy=true -c sample=true`, so the optional
policy and the opt-in sample are in it), offline and without credentials, as `make synth` runs
it; every test reads that assembly.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Match, Template
from cdk_cli import run_cdk_synth

from aws_cloudwatch_logs_handler import RETENTION_DAYS, __version__
from aws_cloudwatch_logs_handler.cdk import (
    CDK_RETENTION,
    CREATOR_ACTIONS,
    READER_GROUP_ACTIONS,
    READER_QUERY_ACTIONS,
    HandlerLayer,
    cdk_retention,
)
from infra.app import cdk_json_context
from infra.config import LogGroupConfig, infra_config_from_context
from infra.log_groups import configured_log_group
from lambda_layer.build import layer_bytes

pytestmark = pytest.mark.slow  # one real-CLI synth for the module

CONTEXT = cdk_json_context()
CONFIG = infra_config_from_context({**CONTEXT, "creator_policy": True, "sample": True})
NAMES = [group.name for group in CONFIG.log_groups]
PSEUDO_JOIN_PREFIX = [
    "arn:",
    {"Ref": "AWS::Partition"},
    ":logs:",
    {"Ref": "AWS::Region"},
    ":",
    {"Ref": "AWS::AccountId"},
]
# CDK's lambda.Function declares DependsOn its role as well as its role's policy, so the policy
# exists before the function; the role half duplicates the GetAtt. Harmless, and not ours.
CFN_LINT_IGNORED = "W3005"
# The console script installed next to this interpreter (cfnlint has no __main__).
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")


@dataclass(frozen=True)
class Assembly:
    """One synthesized cloud assembly and what the tests read from it."""

    directory: Path
    template_path: Path
    template: Template
    raw: dict[str, Any]
    report: dict[str, Any]
    synth_seconds: float


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assembly]:
    """Run `cdk synth` once with the project's cdk.json and the creator policy switched on."""
    out = tmp_path_factory.mktemp("cdk") / "cdk.out"
    started = time.perf_counter()
    result = run_cdk_synth(out, "creator_policy=true", "sample=true")
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    template_path = out / f"{CONFIG.stack_name}.template.json"
    raw = json.loads(template_path.read_text())
    yield Assembly(
        directory=out,
        template_path=template_path,
        template=Template.from_json(raw),
        raw=raw,
        report=json.loads((out / "validation-report.json").read_text()),
        synth_seconds=elapsed,
    )


def _formatted_arn(name: str) -> dict[str, Any]:
    """A group's ARN spelled from its name (only the key policy needs it: no cycle)."""
    return {"Fn::Join": ["", [*PSEUDO_JOIN_PREFIX, f":log-group:{name}"]]}


def _group_id(assembly: Assembly, name: str) -> str:
    (logical_id,) = assembly.template.find_resources(
        "AWS::Logs::LogGroup", {"Properties": {"LogGroupName": name}}
    )
    return logical_id


def _arn(assembly: Assembly, name: str, *, streams: bool) -> dict[str, Any]:
    """The group's ARN attribute (``...:NAME:*``), or its bare form split off from it."""
    attribute = {"Fn::GetAtt": [_group_id(assembly, name), "Arn"]}
    return attribute if streams else {"Fn::Select": [0, {"Fn::Split": [":*", attribute]}]}


def _only(template: Template, resource_type: str, **match: Any) -> tuple[str, Mapping[str, Any]]:
    found = template.find_resources(resource_type, match or None)
    assert len(found) == 1, f"expected one {resource_type} matching {match}, found {list(found)}"
    return next(iter(found.items()))


def _both_forms(assembly: Assembly) -> list[dict[str, Any]]:
    """Each group's bare ARN and its ':*' ARN, as the reader and the creator name them."""
    return [
        arn
        for name in NAMES
        for arn in (_arn(assembly, name, streams=False), _arn(assembly, name, streams=True))
    ]


def _unordered(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document with each statement's resources sorted: CDK orders intrinsics its own way."""
    return {
        **document,
        "Statement": [
            {**statement, "Resource": sorted(statement["Resource"], key=json.dumps)}
            if isinstance(statement["Resource"], list)
            else statement
            for statement in document["Statement"]
        ],
    }


def _managed_policy(assembly: Assembly, description_start: str) -> tuple[str, Mapping[str, Any]]:
    policies = assembly.template.find_resources("AWS::IAM::ManagedPolicy")
    matches = [
        (logical_id, resource)
        for logical_id, resource in policies.items()
        if resource["Properties"]["Description"].startswith(description_start)
    ]
    assert len(matches) == 1, matches
    return matches[0]


def test_synth_runs_offline_without_credentials(assembly: Assembly) -> None:
    """`cdk synth` succeeds with no AWS variables at all and writes the stack's template."""
    assert assembly.template_path.is_file()
    assert assembly.synth_seconds < 120


@pytest.mark.parametrize("group", CONFIG.log_groups, ids=lambda group: group.name)
def test_each_group_has_its_retention_class_and_tags(
    assembly: Assembly, group: LogGroupConfig
) -> None:
    """Every configured group is one LogGroup with its retention (none for "never"), class, tags."""
    expected: dict[str, Any] = {
        "LogGroupName": group.name,
        "RetentionInDays": Match.absent() if group.retention_days is None else group.retention_days,
        "LogGroupClass": group.log_group_class or Match.absent(),
        "Tags": [{"Key": key, "Value": value} for key, value in group.tags]
        if group.tags
        else Match.absent(),
    }
    _only(assembly.template, "AWS::Logs::LogGroup", Properties=expected)


@pytest.mark.parametrize("group", CONFIG.log_groups, ids=lambda group: group.name)
def test_each_group_follows_its_removal_policy(assembly: Assembly, group: LogGroupConfig) -> None:
    """RETAIN keeps a group on delete and replace; DESTROY deletes it."""
    _, resource = _only(
        assembly.template, "AWS::Logs::LogGroup", Properties={"LogGroupName": group.name}
    )
    expected = {
        "RETAIN": ("Retain", "Retain"),
        "DESTROY": ("Delete", "Delete"),
        "RETAIN_ON_UPDATE_OR_DELETE": ("RetainExceptOnCreate", "Retain"),
    }[group.removal_policy]
    assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == expected


def test_a_created_key_rotates_and_lets_only_cloudwatch_logs_use_it_for_its_group(
    assembly: Assembly,
) -> None:
    """kms "create" adds a rotating key whose policy admits logs.<region> for that group only."""
    created = [group for group in CONFIG.log_groups if group.kms == "create"]
    assert created, "cdk.json should show the kms option on at least one group"
    keys = assembly.template.find_resources("AWS::KMS::Key")
    assert len(keys) == len(created)
    for group in created:
        key_id, key = next(
            (key_id, key)
            for key_id, key in keys.items()
            if key["Properties"]["Description"].endswith(group.name)
        )
        assert key["Properties"]["EnableKeyRotation"] is True
        logs_statement = next(
            statement
            for statement in key["Properties"]["KeyPolicy"]["Statement"]
            if statement.get("Sid") == "AllowCloudWatchLogsForThisGroup"
        )
        assert logs_statement["Principal"] == {
            "Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
        }
        assert logs_statement["Condition"] == {
            "ArnEquals": {"kms:EncryptionContext:aws:logs:arn": _formatted_arn(group.name)}
        }
        _only(
            assembly.template,
            "AWS::Logs::LogGroup",
            Properties={"LogGroupName": group.name, "KmsKeyId": {"Fn::GetAtt": [key_id, "Arn"]}},
        )


def test_writer_policy_allows_exactly_stream_creation_and_delivery_on_the_groups(
    assembly: Assembly,
) -> None:
    """The writer has one statement: CreateLogStream and PutLogEvents on each group's ':*' ARN."""
    _, policy = _managed_policy(assembly, "Deliver log events")
    assert _unordered(policy["Properties"]["PolicyDocument"]) == _unordered(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DeliverToConfiguredGroups",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": [_arn(assembly, name, streams=True) for name in NAMES],
                }
            ],
        }
    )


def test_reader_policy_reads_and_queries_the_groups_and_follows_queries_by_id(
    assembly: Assembly,
) -> None:
    """The reader scopes reads and StartQuery to the groups; only query follow-ups use '*'."""
    _, policy = _managed_policy(assembly, "Read, filter and query")
    assert _unordered(policy["Properties"]["PolicyDocument"]) == _unordered(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadConfiguredGroups",
                    "Effect": "Allow",
                    "Action": sorted(READER_GROUP_ACTIONS),
                    "Resource": _both_forms(assembly),
                },
                {
                    "Sid": "FollowInsightsQueries",
                    "Effect": "Allow",
                    "Action": sorted(READER_QUERY_ACTIONS),
                    "Resource": "*",
                },
            ],
        }
    )


def test_creator_policy_creates_and_configures_only_the_groups(assembly: Assembly) -> None:
    """With creator_policy, a third policy allows create, retention and tags on the groups."""
    _, policy = _managed_policy(assembly, "Create the configured")
    assert _unordered(policy["Properties"]["PolicyDocument"]) == _unordered(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "CreateConfiguredGroups",
                    "Effect": "Allow",
                    "Action": sorted(CREATOR_ACTIONS),
                    "Resource": _both_forms(assembly),
                }
            ],
        }
    )


def test_no_logs_action_has_a_wildcard_resource_except_query_follow_ups(
    assembly: Assembly,
) -> None:
    """Across every IAM policy, '*' as a resource appears only for GetQueryResults/StopQuery."""
    documents = [
        resource["Properties"]["PolicyDocument"]
        for resource_type in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy")
        for resource in assembly.template.find_resources(resource_type).values()
    ]
    for document in documents:
        for statement in document["Statement"]:
            resources = statement["Resource"]
            if "*" in (resources if isinstance(resources, list) else [resources]):
                assert sorted(statement["Action"]) == sorted(READER_QUERY_ACTIONS)


def test_layer_is_retained_for_python_3_10_and_newer_on_both_architectures(
    assembly: Assembly,
) -> None:
    """The layer lists python3.10-3.14, x86_64 and arm64, the package version, and is retained."""
    _, layer = _only(assembly.template, "AWS::Lambda::LayerVersion")
    properties = layer["Properties"]
    assert properties["CompatibleRuntimes"] == [f"python3.{minor}" for minor in range(10, 15)]
    assert properties["CompatibleArchitectures"] == ["x86_64", "arm64"]
    assert properties["Description"].startswith(f"aws-cloudwatch-logs-handler {__version__}:")
    assert properties["LicenseInfo"] == "MIT"
    assert (layer["DeletionPolicy"], layer["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_layer_asset_is_the_reproducible_zip_of_the_current_sources(assembly: Assembly) -> None:
    """The zip staged as the layer's asset is byte-identical to a fresh build of the library."""
    _, layer = _only(assembly.template, "AWS::Lambda::LayerVersion")
    staged = assembly.directory / layer["Metadata"]["aws:asset:path"]
    assert staged.read_bytes() == layer_bytes()


def test_sample_function_uses_the_layer_the_writer_policy_and_its_own_log_group(
    assembly: Assembly,
) -> None:
    """The sample runs python3.12 from sample_handler, with the layer, writer role and own group."""
    layer_id, _ = _only(assembly.template, "AWS::Lambda::LayerVersion")
    writer_id, _ = _managed_policy(assembly, "Deliver log events")
    role_id, _ = _only(
        assembly.template, "AWS::IAM::Role", Properties={"ManagedPolicyArns": [{"Ref": writer_id}]}
    )
    _, function = _only(assembly.template, "AWS::Lambda::Function")
    properties = function["Properties"]
    assert properties["Runtime"] == "python3.12"
    assert properties["Handler"] == "sample_handler.handler"
    assert properties["Layers"] == [{"Ref": layer_id}]
    assert properties["Role"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert CONFIG.sample_log_group is not None
    assert properties["Environment"]["Variables"] == {
        "SAMPLE_LOG_GROUP": {"Ref": _group_id(assembly, CONFIG.sample_log_group)}
    }
    own_group = properties["LoggingConfig"]["LogGroup"]["Ref"]
    assert "LogGroupName" not in assembly.raw["Resources"][own_group]["Properties"]
    staged = assembly.directory / function["Metadata"]["aws:asset:path"]
    assert sorted(path.name for path in staged.iterdir()) == ["sample_handler.py"]


def test_no_custom_resources_and_no_analytics_metadata(assembly: Assembly) -> None:
    """Nothing needs a Lambda-backed custom resource (moto cannot run one without Docker)."""
    types = {resource["Type"] for resource in assembly.raw["Resources"].values()}
    assert not [
        kind for kind in types if kind.startswith("Custom::") or kind.startswith("AWS::CDK")
    ]
    assert not assembly.template.find_resources("AWS::CloudFormation::CustomResource")
    assert types == {
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::KMS::Key",
        "AWS::Lambda::Function",
        "AWS::Lambda::LayerVersion",
        "AWS::Logs::LogGroup",
    }


def test_outputs_export_the_layer_the_policies_and_the_group_names(assembly: Assembly) -> None:
    """Layer ARN, each policy ARN and each group name are outputs exported under the stack name."""
    outputs = assembly.raw["Outputs"]
    expected = {
        "LayerVersionArn",
        "WriterPolicyArn",
        "ReaderPolicyArn",
        "CreatorPolicyArn",
        "SampleFunctionName",
        *(f"{group.construct_id}Name" for group in CONFIG.log_groups),
    }
    assert set(outputs) == expected
    for name, output in outputs.items():
        assert output["Export"] == {"Name": f"{CONFIG.stack_name}-{name}"}


def test_cdk_nag_found_nothing_unacknowledged_and_every_acknowledgment_has_a_reason(
    assembly: Assembly,
) -> None:
    """AwsSolutions ran, passed, and its suppressions are exactly the known ones, each reasoned."""
    (report,) = assembly.report["pluginReports"]
    assert report["pluginName"] == "AwsSolutions"
    assert report["conclusion"] == "success"
    assert report["violations"] == []
    suppressed = report["suppressedViolations"]
    # The bare ARN split off each group's ':*' ARN, once in the reader and once in the creator.
    split_arns = [
        json.dumps(_arn(assembly, name, streams=False), separators=(",", ":"))
        for name in NAMES
        for _policy in ("Reader", "Creator")
    ]
    assert sorted(violation["acknowledgedId"] for violation in suppressed) == sorted(
        [
            *(f"AwsSolutions::AwsSolutions-IAM5[Resource::{arn}]" for arn in split_arns),
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "AwsSolutions::AwsSolutions-L1",
        ]
    )
    assert all(len(violation["reason"]) > 40 for violation in suppressed)


def test_cfn_lint_passes_on_every_synthesized_template(assembly: Assembly) -> None:
    """cfn-lint reports nothing on the assembly's templates (one CDK-made warning excepted)."""
    templates = sorted(str(path) for path in assembly.directory.glob("*.template.json"))
    result = subprocess.run(
        [CFN_LINT, "--ignore-checks", CFN_LINT_IGNORED, "--", *templates],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_retention_value_maps_to_the_same_number_of_days_in_cdk() -> None:
    """The days-to-CDK table covers the 22 values and each synthesizes to its own day count."""
    assert sorted(CDK_RETENTION) == list(RETENTION_DAYS)
    stack = Stack(App(), "RetentionTable")
    for days in RETENTION_DAYS:
        logs.LogGroup(stack, f"Keep{days}Days", retention=cdk_retention(days))
    logs.LogGroup(stack, "Never", retention=cdk_retention(None))
    groups = Template.from_stack(stack).find_resources("AWS::Logs::LogGroup")
    synthesized = {
        logical_id: resource.get("Properties", {}).get("RetentionInDays")
        for logical_id, resource in groups.items()
    }
    for days in RETENTION_DAYS:
        (value,) = [
            value for key, value in synthesized.items() if key.startswith(f"Keep{days}Days")
        ]
        assert value == days
    (never,) = [value for key, value in synthesized.items() if key.startswith("Never")]
    assert never is None


def test_layer_construct_accepts_any_zip_path(tmp_path: Path) -> None:
    """HandlerLayer packages the zip it is given, not one found from the working directory."""
    zip_path = tmp_path / "layer.zip"
    zip_path.write_bytes(layer_bytes())
    stack = Stack(App(), "LayerOnly")
    HandlerLayer(stack, "Layer", zip_path=zip_path)
    Template.from_stack(stack).resource_count_is("AWS::Lambda::LayerVersion", 1)


def test_an_existing_key_is_referenced_not_created() -> None:
    """kms=<key ARN> puts that ARN on the group and creates no key; a DELIVERY group synthesizes."""
    key_arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    stack = Stack(App(), "ExistingKey")
    configured_log_group(
        stack,
        LogGroupConfig(
            name="/app/delivery",
            retention_days=None,
            removal_policy="RETAIN_ON_UPDATE_OR_DELETE",
            kms=key_arn,
            log_group_class="DELIVERY",
        ),
    )
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::KMS::Key", 0)
    (group,) = template.find_resources("AWS::Logs::LogGroup").values()
    assert group["Properties"] == {
        "LogGroupName": "/app/delivery",
        "KmsKeyId": key_arn,
        "LogGroupClass": "DELIVERY",
    }
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == (
        "RetainExceptOnCreate",
        "Retain",
    )
