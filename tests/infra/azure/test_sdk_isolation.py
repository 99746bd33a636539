"""An Azure stack never imports the AWS SDK (and warns nothing from our code); the AWS side of
the same guarantee is tests/infra/test_plan.py (an AWS stack never imports pulumi_azure_native).
A fresh interpreter: the test process itself has loaded both SDKs."""

from __future__ import annotations

import subprocess
import sys

from infra.mockrun import ROOT

CODE = r"""
import sys, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from infra.mockrun import run_stack
    run = run_stack("prod-azure")
ours = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught
        if issubclass(w.category, DeprecationWarning) and "/site-packages/" not in w.filename]
print("RESOURCES", len(run.resources))
print("OURS", ours)
print("AWS", sorted(m for m in sys.modules if m.split(".")[0] in ("pulumi_aws", "boto3", "botocore")))
print("AZURE", "pulumi_azure_native" in sys.modules)
"""


def test_an_azure_stack_never_imports_the_aws_sdk():
    out = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "AZURE True" in out, out  # it did run the Azure program
    assert "AWS []" in out, out
    assert "OURS []" in out, out
