"""Data sets and training recipes for the experiments of Benfenati & Marta, paper II.

``fiberscope.experiments.datasets`` regenerates the paper's training data (same distributions,
sizes and normalisation as the authors' scripts in ``simec-1d-test-code``) from a seed, and
``fiberscope.experiments.training`` trains PyTorch networks of the paper's architectures on it
and writes them in the paper's weights-CSV format.
"""
