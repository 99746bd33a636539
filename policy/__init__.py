"""The project's policy pack (pulumi-policy / CrossGuard): `PulumiPolicy.yaml`, the entry
point `__main__.py` and the rules in `policy.rules`."""
