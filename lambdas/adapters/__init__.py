"""Storage adapters: one small module per object store (boto3 loads only when used)."""
