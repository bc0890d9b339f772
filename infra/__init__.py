"""The CDK app that provisions log groups, least-privilege IAM policies and the handler's layer.

Modules, one job each:

- `config`: parse and validate the ``log_groups`` context into typed settings.
- `log_groups`, `policies`, `layer`, `sample`: small Constructs with keyword-only props;
  `nag`: cdk-nag's checks and the one way a construct acknowledges a finding (with a reason).
- `stack`: composes them and declares the outputs; `app`: the entry point ``cdk.json`` runs.
- `deploy`: bootstrap and deploy with the real CDK CLI, to a local endpoint unless told ``aws``;
  `local_endpoint`: the moto server it starts when no endpoint is given.

Dependency direction: ``infra -> lambda_layer -> aws_cloudwatch_logs_handler``, never the reverse.
"""
