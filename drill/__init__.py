"""The DR drill (`python -m drill`): the plan's four scenarios rehearsed on real PostgreSQL,
barman-cloud and a loopback object store (moto's S3, or Azurite's Blob service with
`--store azure`), measured against drplan's objectives.

Modules: local (throwaway PostgreSQL and moto), azurite (the Azure Storage emulator),
backup_store (what barman-cloud needs of a store), s3_store and vault (Object-Lock buckets in
the production and vault accounts), azure_store (a container and a writer SAS), environment
(the site: primary, standby, restores), load (the writer and its ledger), scenarios,
ransomware (what each store refuses the attacker), integrity (judging a recovery against the
ledger), report, cli.
"""
