"""Command-line plumbing for run.py: one-line config errors, then dispatch to a stage."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException, HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bert_repro.config import CONF_DIR, canonical_overrides, group_options, register
from bert_repro.errors import UserError
from bert_repro.results.record import git_state
from bert_repro.runs import exclusive, finished_record, remove_if_stub, repair_store
from bert_repro.training import distributed
from bert_repro.validate import check_settings

# Stage <key> is bert_repro/stages/<key>.py, whose run(cfg, run_dir) returns the result record;
# imported only when it runs. Each runs alone or data-parallel under msrun (rank 0 writes).
STAGES = ("finetune", "squad", "swag", "pretrain")
GROUPS = ("model", "task", "optim", "trainer", "data", "objective", "speed", "logger", "experiment")


class SweepPointFailed(CompactHydraException):
    """A sweep point's user error, raised so that Hydra finishes the other points and then exits
    non-zero, printing this one line (compact: no traceback)."""


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def preflight(argv: list[str]) -> None:
    """Compose the config once before Hydra runs, turning its errors into one line each.

    Sweep values (a,b,c) are checked through their first value; Hydra flags are left alone.
    """
    overrides = canonical_overrides(get_args_parser().parse_args(argv).overrides)
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        fail(f"could not parse overrides: {str(err).splitlines()[0]}")
    plain = []
    for item in parsed:
        if item.key_or_group.startswith("hydra"):
            continue
        value = next(iter(item.sweep_iterator())) if item.is_sweep_override() else item.value()
        plain.append(f"{item.get_key_element()}={_format(value)}")
        group = item.key_or_group
        if group in GROUPS and item.value_type is not None and not item.is_delete():
            choices = [
                str(v) for v in (item.sweep_iterator() if item.is_sweep_override() else [value])
            ]
            for choice in choices:
                if choice not in group_options(group):
                    options = ", ".join(group_options(group))
                    fail(f"unknown {group} '{choice}'; choose one of: {options}")
    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=plain)
        OmegaConf.to_container(cfg, resolve=False)
    except (HydraException, OmegaConfBaseException) as err:
        fail(explain(err))
    finally:
        GlobalHydra.instance().clear()
    _check_against_schema(cfg)
    if cfg.data.source == "local" and not cfg.data.root:
        fail("data=local needs the GLUE folder: data=local data.root=/path/to/glue")
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        hint = " (e.g. data=local data.root=/path/to/glue)" if "data.root" in missing else ""
        fail(f"required setting(s) not given: {', '.join(missing)}{hint}")
    try:
        check_settings(cfg)
    except UserError as err:
        fail(str(err))


def _check_against_schema(cfg: DictConfig) -> None:
    """Keys added with `+key=value` bypass Hydra's struct check; reject those not in the schema."""
    from bert_repro.config import Config

    def walk(node: DictConfig, schema: DictConfig, prefix: str) -> None:
        for key in node:
            if key not in schema.keys():  # noqa: SIM118  (`in` is False for ??? values)
                fail(_unknown_key(f"{prefix}{key}", schema.keys()))
            child = node._get_node(key)
            if isinstance(child, DictConfig) and isinstance(schema._get_node(key), DictConfig):
                walk(child, schema[key], f"{prefix}{key}.")

    walk(cfg, OmegaConf.structured(Config), "")


def _format(value: object) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_format(v) for v in value) + "]"
    return "null" if value is None else str(value)


def explain(err: Exception) -> str:
    """One line for a composition error, listing valid keys when a key is misspelt."""
    text = " ".join(str(err).split())
    if err.__cause__ is not None:
        text = f"{text}: {' '.join(str(err.__cause__).split())}"
    full_key = getattr(err, "full_key", None) or _key_from(text)
    if full_key and (
        "not in struct" in text or "is not in" in text or "Could not override" in text
    ):
        node = _schema_node(full_key.rpartition(".")[0])
        if node is not None:
            return _unknown_key(full_key, node)
    return text.split(" Set the environment")[0][:300]


def _unknown_key(full_key: str, valid: Iterable[str]) -> str:
    parent = full_key.rpartition(".")[0]
    where = f" under {parent}" if parent else ""
    return f"unknown config key '{full_key}'; valid keys{where}: {', '.join(sorted(valid))}"


def _key_from(text: str) -> str | None:
    marker = "full_key: "
    if marker in text:
        return text.split(marker, 1)[1].split()[0]
    if "Could not override '" in text:
        return text.split("Could not override '", 1)[1].split("'", 1)[0]
    return None


def _schema_node(parent: str) -> list[str] | None:
    from bert_repro.config import Config

    node = OmegaConf.structured(Config)
    for part in filter(None, parent.split(".")):
        if not isinstance(node, DictConfig) or part not in node:
            return None
        node = node[part]
    return sorted(node.keys()) if isinstance(node, DictConfig) else None


def run_stage(cfg: DictConfig) -> None:
    """Run the configured stage in its run directory, one launch at a time; user errors become
    one line (exit 1; in a sweep, the other points run and the sweep then exits non-zero)."""
    from bert_repro.backend import use_device

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        use_device(cfg.device)  # first: msrun's group binds each rank to a device of this target
        distributed.world()  # under msrun: join the group first (its scheduler stops here)
        git_state()  # the commit at launch is the code this run executes
        with exclusive(run_dir):
            _run_in(cfg, run_dir)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        if HydraConfig.get().mode.name == "RUN":
            raise SystemExit(1) from None
        raise SweepPointFailed(f"error: a sweep point failed ({run_dir}): {err}") from None


def _run_in(cfg: DictConfig, run_dir: Path) -> None:
    """The stage, or the finished run's result; a failure before training removes the run dir."""
    from bert_repro import backend, cpu_backend
    from bert_repro.training.precision import check_supported

    finished = finished_record(run_dir)
    if finished and cfg.trainer.resume:
        # Same science config -> same run dir: a relaunched command or sweep skips done points.
        repaired = repair_store(finished, Path(cfg.paths.results))
        if repaired:
            print(f"results store was missing this run's record: wrote {repaired}")
        print(f"already finished ({run_dir}/record.json): {json.dumps(finished['metrics'])}")
        print("to run it again: trainer.resume=false")
        return
    try:
        check_settings(cfg)  # preflight saw only the first value of each sweep
        check_supported(cfg.trainer.precision, backend.target())
        backend.configure_hub(cfg.hub.endpoint, cfg.hub.offline, cfg.hub.timeout_s)
        backend.load_framework(cfg.device)
        cpu_backend.tune(cfg.speed)  # nothing off the CPU
        if cfg.stage not in STAGES:
            raise UserError(f"unknown stage '{cfg.stage}': choose one of {', '.join(STAGES)}")
        importlib.import_module(f"bert_repro.stages.{cfg.stage}").run(cfg, run_dir)
        distributed.barrier()  # data parallel: the others exit once rank 0 has written all
    except BaseException:
        if distributed.is_main():
            remove_if_stub(run_dir)
        raise
