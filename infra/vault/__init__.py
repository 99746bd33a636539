"""The backup-only account's stack (`vault`): copies of every backup out of the production
account's blast radius. config.py validates its configuration, program.py builds it, and
names.py holds what the sites and the vault must agree on before either exists."""
