"""The experiments of Benfenati & Marta's papers, reproduced with fiberscope (not installed).

Run from a checkout's root: ``python -m paper.reproduce --out DIR`` regenerates the six
experiments of paper II (see ``docs/paper-reproduction.md``). The modules use fiberscope only
through its public API (``import fiberscope as fs``); the little glue that reads results and
writes files lives in :mod:`paper.adapter`.

- :mod:`paper.datasets`, :mod:`paper.training`: the paper II data recipes and networks;
- :mod:`paper.specs`, :mod:`paper.metrics`, :mod:`paper.runner`, :mod:`paper.figures`: the
  experiments, their error measures, tables and figures;
- :mod:`paper.mnist`, :mod:`paper.ccpp`: the paper III networks (MNIST CNN, CCPP regression).
"""
