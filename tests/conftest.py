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


def pytest_configure(config):
    # The suite allocates millions of short-lived SDK objects (each mock-runtime run, tens of
    # thousands); with CPython's default young-generation threshold (700) the cyclic collector
    # sweeps the large heap of loaded SDK modules again and again. Fewer, larger collections:
    # the same memory in the end, a fraction of the collector's time (infra/mockrun.py does
    # the same around each run outside the tests).
    import gc

    gc.set_threshold(50_000, 20, 20)
    # One record per mock-runtime run for the whole session: the first worker to need a run
    # makes it, the others read it (infra/mockrun.py _shared), so the session fixtures and the
    # activation variants are not recomputed by every xdist worker. Set once by the process
    # that starts the workers (they inherit its environment).
    import os
    import tempfile
    from datetime import UTC, datetime

    from infra import mockrun

    if mockrun.SHARED_RUNS_ENV not in os.environ:
        os.environ[mockrun.SHARED_RUNS_ENV] = tempfile.mkdtemp(prefix="postoucancer-runs-")
        config._postoucancer_shared_runs = os.environ[mockrun.SHARED_RUNS_ENV]
    os.environ.setdefault(SESSION_START_ENV, datetime.now(UTC).replace(microsecond=0).isoformat())


SESSION_START_ENV = "POSTOUCANCER_TEST_SESSION_START"


def pytest_unconfigure(config):
    import os
    import shutil

    from infra import mockrun

    created = getattr(config, "_postoucancer_shared_runs", None)
    if created:
        shutil.rmtree(created, ignore_errors=True)
        os.environ.pop(mockrun.SHARED_RUNS_ENV, None)
