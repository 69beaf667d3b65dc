"""The stages run.py dispatches to: `stage=<key>` runs `bert_repro.stages.<key>.run`."""
