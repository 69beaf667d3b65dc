"""Shared fixtures: where the optional real data lives, and a skip when it is absent."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Load mindnlp before any test module imports `transformers`.

    mindnlp patches transformers when it is imported; a test module that imports transformers
    first (the data builder's do) leaves later model tests with a half-patched library.
    """
    from bert_repro import backend

    backend.configure_hub("https://huggingface.co", offline=True)
    backend.load_framework("cpu")  # the suite tests the CPU path; other targets are simulated


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full real datasets beside the clone (CI has them; a user's clone may not)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def compose(overrides: list[str], tmp_path: Path):
    """The resolved config `python run.py <overrides>` would run, with output under tmp_path."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bert_repro.config import CONF_DIR, register

    register()
    GlobalHydra.instance().clear()
    paths = [f"paths.runs={tmp_path / 'runs'}", f"paths.results={tmp_path / 'results'}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=overrides + paths)
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


TINY = [
    "model=bert_tiny",
    "model.pretrained=null",
    "trainer.batch_size=8",
    "speed.eval_batch_size=16",
]
