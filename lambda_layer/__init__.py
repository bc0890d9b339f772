"""Builds the Lambda layer zip that ships the handler library.

Run ``python -m lambda_layer.build --out build/lambda_layer.zip``; from Python, call
`lambda_layer.build.build_layer`. Nothing is imported here, so ``-m`` runs the module only once.
"""
