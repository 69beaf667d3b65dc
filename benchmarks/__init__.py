"""Benchmarks against PyTorch + Hugging Face on the same machine: `python -m benchmarks`.

The PyTorch side runs in a separate interpreter (`--ref-python`): importing mindnlp makes
`import torch` answer with mindtorch, so the two frameworks can never share a process. Both sides
read the same inputs from one `.npz`, so they compute on identical token ids and masks.
Modules imported by the reference side (`stats`, `inputs`, `reference`) need only numpy.
"""
