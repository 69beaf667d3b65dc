"""Experiment definitions (experiments/<name>.yaml) expanded into ordered, resolvable runs.

A definition lists, per scale (``paper``, ``cpu``), stages of runs. A stage's ``matrix`` of
placeholders expands into runs of run.py overrides; each run is one Hydra multirun over its sweep
(the preset's declared ``hydra.sweeper.params`` grid, updated by the stage's ``sweep``). A stage
that ``needs`` an earlier one starts from that stage's checkpoint: the run dir is computed the way
Hydra names it (compose + ``${run_id:}``), never looked up by name, so plans are exact before
anything has run and a relaunch finds every finished point.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bert_repro.cli import explain
from bert_repro.config import CONF_DIR, canonical_overrides, register
from bert_repro.errors import UserError
from bert_repro.experiments.estimate import Estimate, estimate
from bert_repro.runs import finished_record

REPO = CONF_DIR.parent
EXPERIMENTS_DIR = REPO / "experiments"


@dataclass(frozen=True)
class Point:
    """One job of a run's multirun: its sweep values and the run dir Hydra will give it."""

    values: dict[str, Any]
    run_dir: Path

    def status(self) -> str:
        """done (complete record), started (run dir exists: resumes), or pending."""
        path = self.run_dir if self.run_dir.is_absolute() else REPO / self.run_dir
        if finished_record(path):
            return "done"
        return "started" if path.is_dir() else "pending"


@dataclass
class Run:
    """One run.py multirun: fixed overrides plus a sweep, and the checkpoint run it starts from."""

    stage: str
    label: str
    placeholders: dict[str, str]
    overrides: list[str]
    sweep: dict[str, str]  # key -> Hydra sweep values, e.g. "5e-5,4e-5,3e-5,2e-5"
    points: list[Point]
    needs: Run | None
    estimate: Estimate  # per point
    cfg: DictConfig = field(repr=False)

    def done(self) -> bool:
        return all(point.status() == "done" for point in self.points)

    def arguments(self) -> list[str]:
        """run.py's arguments: always a multirun, so every launcher applies."""
        return ["-m", *self.overrides, *(f"{k}={v}" for k, v in self.sweep.items())]


@dataclass
class Plan:
    name: str
    scale: str
    title: str
    about: str
    runs: list[Run]


def definitions() -> list[str]:
    """The names of the experiment definitions (experiments/*.yaml)."""
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))


def load(name: str) -> dict[str, Any]:
    path = EXPERIMENTS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown experiment '{name}'; choose one of: {', '.join(definitions())}")
    return OmegaConf.to_container(OmegaConf.load(path))


def expand(name: str, scale: str, extra: Sequence[str] = ()) -> Plan:
    """The definition's runs at one scale, in launch order; ``extra`` overrides apply to all.

    Extra overrides of ``hydra.*`` go to the launch command only (they change no run dir).
    """
    definition = load(name)
    if scale not in definition["scales"]:
        scales = ", ".join(definition["scales"])
        raise UserError(f"{name} has no scale '{scale}'; choose one of: {scales}")
    spec = definition["scales"][scale]
    register()
    GlobalHydra.instance().clear()
    runs: list[Run] = []
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            for stage in spec["stages"]:
                runs += _expand_stage(stage, runs, [e for e in extra if not e.startswith("hydra")])
    finally:
        GlobalHydra.instance().clear()
    return Plan(name, scale, definition["title"], " ".join(spec["about"].split()), runs)


def _expand_stage(stage: Mapping[str, Any], earlier: list[Run], extra: list[str]) -> list[Run]:
    runs = []
    for placeholders, added, label in _matrix(stage.get("matrix", {}), stage.get("exclude", [])):
        label = f"{stage['name']}[{label}]" if label else stage["name"]
        needs = (
            _dependency(stage["needs"], placeholders, earlier, label) if "needs" in stage else None
        )
        if needs is not None:
            placeholders["needs"] = str(needs.points[0].run_dir)
        templates = [*stage.get("overrides", []), *added]
        overrides = [_fill(t, placeholders, label) for t in templates] + extra
        cfg = _compose(overrides, label)
        declared = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
        sweep = {k: str(v) for k, v in declared.items()}
        sweep.update(
            {k: _fill(str(v), placeholders, label) for k, v in stage.get("sweep", {}).items()}
        )
        points = _points(cfg, overrides, sweep, label)
        weights = needs.cfg.model if needs is not None else None
        runs.append(
            Run(
                stage["name"],
                label,
                placeholders,
                overrides,
                sweep,
                points,
                needs,
                estimate(cfg, weights),
                cfg,
            )
        )
    return runs


def _matrix(
    matrix: Mapping[str, list[Any]], exclude: list[Mapping[str, Any]]
) -> Iterator[tuple[dict[str, str], list[str], str]]:
    """(placeholders, extra overrides, label) per combination, in the order the axes are listed.

    An axis value is a scalar (the placeholder named after the axis) or a mapping: its keys are
    placeholders (it must name the axis key) and its ``overrides`` list is added to the run's.
    """
    axes = list(matrix.items())
    for combo in itertools.product(*(values for _, values in axes)):
        placeholders: dict[str, str] = {}
        added: list[str] = []
        for (axis, _), value in zip(axes, combo, strict=True):
            if isinstance(value, Mapping):
                added += value.get("overrides", [])
                placeholders.update({k: str(v) for k, v in value.items() if k != "overrides"})
            else:
                placeholders[axis] = str(value)
        if any(all(placeholders.get(k) == str(v) for k, v in rule.items()) for rule in exclude):
            continue
        yield placeholders, added, ", ".join(f"{axis}={placeholders[axis]}" for axis, _ in axes)


PLACEHOLDER = re.compile(r"(?<!\$)\{(\w+)\}")  # {task}; ${paths.data} is left to Hydra


def _fill(template: str, placeholders: Mapping[str, str], label: str) -> str:
    def value(match: re.Match[str]) -> str:
        if match[1] not in placeholders:
            raise UserError(f"{label}: unknown placeholder {{{match[1]}}} in '{template}'")
        return str(placeholders[match[1]])

    return PLACEHOLDER.sub(value, template)


def _dependency(
    needs: Mapping[str, Any], placeholders: Mapping[str, str], earlier: list[Run], label: str
) -> Run:
    """The single-point run of an earlier stage whose placeholders agree on ``needs.match``."""
    found = [
        run
        for run in earlier
        if run.stage == needs["stage"]
        and all(run.placeholders.get(k) == placeholders.get(k) for k in needs["match"])
    ]
    if len(found) != 1 or len(found[0].points) != 1:
        raise UserError(
            f"{label}: needs one single-point run of stage '{needs['stage']}' matching "
            f"{needs['match']}, found {len(found)}"
        )
    return found[0]


def _compose(overrides: list[str], label: str) -> DictConfig:
    try:
        cfg = compose(
            config_name="config",
            overrides=canonical_overrides(overrides),
            return_hydra_config=True,
        )
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(f"{label}: {explain(err)}") from None
    missing = [
        f"{key}.{sub}"
        for key, node in cfg.items()
        if key != "hydra" and isinstance(node, DictConfig)
        for sub in OmegaConf.missing_keys(node)
    ]
    if missing:
        raise UserError(f"{label}: required setting(s) not given: {', '.join(sorted(missing))}")
    return cfg


def _points(
    cfg: DictConfig, overrides: list[str], sweep: Mapping[str, str], label: str
) -> list[Point]:
    """Every job of the sweep with its run dir; group sweeps (model=a,b) are composed each."""
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in sweep.items()])
    axes = [
        [
            (o.get_key_element(), v)
            for v in (o.sweep_iterator() if o.is_sweep_override() else [o.value()])
        ]
        for o in parsed
    ]
    groups = any((CONF_DIR / o.key_or_group).is_dir() for o in parsed)
    # Value sweeps set each point's values on one copy of the composed config (every point sets
    # every swept key): the values Hydra's overrides set, without composing each point.
    job = _without_hydra(cfg)
    points = []
    for combo in itertools.product(*axes):
        if groups:
            job = _without_hydra(_compose([*overrides, *(f"{k}={v}" for k, v in combo)], label))
        else:
            for key, value in combo:
                OmegaConf.update(job, key, value, merge=False)
        points.append(Point(dict(combo), run_dir(job)))
    return points


def _without_hydra(cfg: DictConfig) -> DictConfig:
    """The config with only hydra.sweep (the run dir templates) left of the hydra node."""
    lean = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    OmegaConf.set_struct(lean, False)
    lean.hydra = {"sweep": OmegaConf.to_container(cfg.hydra.sweep, resolve=False)}
    OmegaConf.set_struct(lean, True)
    return lean


def run_dir(cfg: DictConfig) -> Path:
    """Where Hydra puts this job of a multirun: hydra.sweep.dir / hydra.sweep.subdir."""
    return Path(OmegaConf.select(cfg, "hydra.sweep.dir")) / OmegaConf.select(
        cfg, "hydra.sweep.subdir"
    )
