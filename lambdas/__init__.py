"""The serverless backup and verify functions (data plane).

`lambdas.core` is cloud-neutral, ordinary Python; `lambdas.adapters` holds the storage
adapters (S3 today); `lambdas.aws_lambda` and `lambdas.cli` are the thin entry points.
See lambdas/README.md.
"""
