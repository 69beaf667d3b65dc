"""The experiment catalogue: one launchable definition per paper table (experiments/*.yaml).

``python -m bert_repro.experiments plan <name> --scale cpu`` prints the runs, their run dirs and
estimated compute without running anything; ``launch`` runs them through run.py (see README,
"Experiments and sweeps"). Kept import-light: Hydra instantiates :mod:`.callbacks` in every run.
"""
