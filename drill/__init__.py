"""The DR drill (`python -m drill`): the plan's four scenarios rehearsed on real PostgreSQL,
barman-cloud and a loopback S3 API, measured against drplan's objectives.

Modules: local (throwaway PostgreSQL and moto), backup_store (barman-cloud and the locked
bucket), environment (the site: primary, standby, restores), load (the writer and its ledger),
scenarios, integrity (judging a recovery against the ledger), report, cli.
"""
