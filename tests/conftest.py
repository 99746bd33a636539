"""Shared harness: run stacks under Pulumi mocks once per session and hand out the records.

Every component test is a few lines:

    def test_x(prod):                       # the prod stack after the full bootstrap
        bucket = prod.one("aws:s3/bucket:Bucket", "files")
        assert bucket.protect

`run_stack` (from infra.mockrun) runs a variant with overrides, e.g.
`run_stack("dr", peer_outputs=pair_prod.primary.outputs, overrides={"postoucancer-dr:activated": True})`.
"""

from __future__ import annotations

import pytest

from infra.mockrun import PAIRS, PairRun, StackRun, run_pair, run_stack  # noqa: F401


@pytest.fixture(scope="session")
def pair_prod() -> PairRun:
    return run_pair(*PAIRS["prod"])


@pytest.fixture(scope="session")
def pair_staging() -> PairRun:
    return run_pair(*PAIRS["staging"])


@pytest.fixture(scope="session")
def prod(pair_prod: PairRun) -> StackRun:
    return pair_prod.primary


@pytest.fixture(scope="session")
def dr(pair_prod: PairRun) -> StackRun:
    return pair_prod.dr


@pytest.fixture(scope="session")
def staging(pair_staging: PairRun) -> StackRun:
    return pair_staging.primary


@pytest.fixture(scope="session")
def staging_dr(pair_staging: PairRun) -> StackRun:
    return pair_staging.dr


@pytest.fixture(scope="session")
def pair_azure() -> PairRun:
    """prod-azure + dr-azure after the documented bootstrap (dr, prod, dr, prod)."""
    return run_pair(*PAIRS["prod-azure"])


@pytest.fixture(scope="session")
def prod_azure(pair_azure: PairRun) -> StackRun:
    return pair_azure.primary


@pytest.fixture(scope="session")
def dr_azure(pair_azure: PairRun) -> StackRun:
    return pair_azure.dr


@pytest.fixture(scope="session")
def vault(pair_prod: PairRun) -> StackRun:
    """The backup-only account's stack, as the prod pair's bootstrap deployed it (first)."""
    assert pair_prod.vault is not None
    return pair_prod.vault
