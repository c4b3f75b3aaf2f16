"""Dataset-scale runs: one verb on every item of a dataset, in this process or on Ray.

``fiberscope.run_many(model, inputs, verb, store=...)`` (and ``fiberscope run JOB.toml``) run
``walk``, ``trace`` or ``preimage`` on every input (times every interval for a preimage grid),
writing each item's result into one store (:mod:`fiberscope.jobs.store`: a Parquet file per
item and a JSON manifest). Seeds derive from the job's seed and the item's index, so the results
are the same in this process, on one Ray worker or on many. See ``docs/cluster.md``.
"""

from .inputs import InputSet, Item, open_inputs
from .run import JobResult, run_many
from .spec import Job, ModelSpec, build_job, item_seed, load_job_file
from .store import ItemResult, StoreReader, open_store

__all__ = [
    "InputSet",
    "Item",
    "ItemResult",
    "Job",
    "JobResult",
    "ModelSpec",
    "StoreReader",
    "build_job",
    "item_seed",
    "load_job_file",
    "open_inputs",
    "open_store",
    "run_many",
]
