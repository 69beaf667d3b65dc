"""Shared fixtures: where the optional real data lives, and a skip when it is absent."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


# Test modules that never touch the framework (nor transformers, which must load after it): a
# run of only these never loads MindSpore, which takes seconds; the session checks that it did not.
FRAMEWORK_FREE = {
    "test_agreement.py",
    "test_catalogue.py",
    "test_committed_checkpoints.py",
    "test_config.py",
    "test_glue_metrics.py",
    "test_import_boundaries.py",
    "test_notebooks.py",
    "test_paper_tables.py",
    "test_report.py",
    "test_squad_metrics.py",
    "test_sweeps.py",
}


def pytest_configure(config: pytest.Config) -> None:
    from bert_repro import backend

    backend.configure_hub("https://huggingface.co", offline=True)


def pytest_collectstart(collector: pytest.Collector) -> None:
    """Load mindnlp just before a test module that may need it is imported.

    mindnlp patches transformers when it is imported; a test module that imports transformers
    first (the data builder's do) would leave later model tests with a half-patched library.
    """
    if isinstance(collector, pytest.Module) and collector.path.name not in FRAMEWORK_FREE:
        if "transformers" in sys.modules and "mindnlp" not in sys.modules:
            raise RuntimeError("a FRAMEWORK_FREE test module imported transformers before mindnlp")
        from bert_repro import backend

        backend.load_framework("cpu")  # the suite tests the CPU path; others are simulated


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run of framework-free modules only must not have loaded MindSpore after all."""
    if "mindnlp" not in sys.modules and "mindspore" in sys.modules and exitstatus == 0:
        print("\nerror: a test module in tests/conftest.py FRAMEWORK_FREE loaded MindSpore")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full real datasets beside the clone (CI has them; a user's clone may not)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def compose(overrides: list[str], tmp_path: Path, with_hydra: bool = False):
    """The resolved config `python run.py <overrides>` would run, with output under tmp_path
    (`with_hydra`: and Hydra's own node: launcher, sweeper, run dirs)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bert_repro.config import CONF_DIR, canonical_overrides, register

    register()
    GlobalHydra.instance().clear()
    paths = [f"paths.runs={tmp_path / 'runs'}", f"paths.results={tmp_path / 'results'}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(
            config_name="config",
            overrides=canonical_overrides(overrides) + paths,
            return_hydra_config=with_hydra,
        )
    GlobalHydra.instance().clear()
    return cfg


@pytest.fixture(scope="session")
def framework():
    """mindnlp, loaded offline by pytest_configure (the hub is never reachable in tests)."""
    from bert_repro import backend

    return backend.load_framework()


@pytest.fixture(scope="session")
def tiny_glue(tmp_path_factory) -> Path:
    from tests.glue_fixture import write_tiny_glue

    return write_tiny_glue(tmp_path_factory.mktemp("glue"), n=24)


ONE_PHASE = [
    "task.max_seq_length=128",
    "pretrain.phase2_fraction=0",
    "pretrain.phase2_batch_size=null",
    "pretrain.phase2_lr=null",
]
"""The CPU pre-training presets run two phases; pipeline tests keep one 128-token phase."""

DROPOUT_ON = ["model.hidden_dropout_prob=0.1", "model.attention_probs_dropout_prob=0.1"]
"""The CPU pre-training presets train without dropout; tests of exact replay across a kill or
across ranks put it back, so that they still cover the dropout random streams."""


TINY = [
    "model=bert_tiny",
    "model.pretrained=null",
    "trainer.batch_size=8",
    "speed.eval_batch_size=16",
]
