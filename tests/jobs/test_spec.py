"""Job specs: seeds per item, the verbs' options, job files, models sent to workers as specs."""

from __future__ import annotations

import shutil

import pytest
import torch

import fiberscope as fs
from fiberscope.errors import InputError
from fiberscope.jobs.spec import ModelSpec, check_options, item_seed, load_job_file, load_payload


def test_item_seeds_depend_on_job_seed_and_index_only() -> None:
    seeds = [item_seed(7, i) for i in range(1000)]
    assert len(set(seeds)) == 1000
    assert all(0 <= s < 2**63 for s in seeds)
    assert [item_seed(7, i) for i in reversed(range(1000))] == seeds[::-1]
    assert item_seed(8, 0) != item_seed(7, 0)
    # SplitMix64 of the job seed, xor the index, SplitMix64 again (the walk's chain rule)
    from fiberscope.engine.policies.walk import chain_seed

    assert item_seed(12345, 17) == chain_seed(12345, 17)


def test_options_are_checked_by_name() -> None:
    assert check_options("walk", {"samples": 3, "bounds": (0, 1)}) == {
        "samples": 3,
        "bounds": [0, 1],
    }
    with pytest.raises(InputError, match=r"walk has no option 'sample'; its options are: .*sam"):
        check_options("walk", {"sample": 3})
    with pytest.raises(InputError, match="progress is set by the job runner"):
        check_options("trace", {"progress": True})
    with pytest.raises(InputError, match="seed is the job's own option"):
        check_options("walk", {"seed": 1})
    with pytest.raises(InputError, match="must be plain data"):
        check_options("walk", {"log_density": lambda x: x})


def test_job_file_paths_are_relative_to_it(tmp_path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "net.py").write_text("def f(x):\n    return x.sum(-1, keepdim=True)\n")
    (tmp_path / "jobs" / "job.toml").write_text(
        'verb = "trace"\nmodel = "net.py:f"\ninputs = "pts.npy"\nstore = "out"\nseed = 4\n'
        "[options]\nstep = 0.1\nbounds = [-1, 1]\n"
    )
    kw = load_job_file(tmp_path / "jobs" / "job.toml")
    assert kw["model"] == f"{tmp_path / 'jobs' / 'net.py'}:f"
    assert kw["inputs"] == str(tmp_path / "jobs" / "pts.npy")
    assert kw["store"] == str(tmp_path / "jobs" / "out")
    assert kw["step"] == 0.1 and kw["bounds"] == [-1, 1] and kw["seed"] == 4
    # a bundled name stays a name
    (tmp_path / "jobs" / "b.toml").write_text(
        'verb = "trace"\nmodel = "surface_1"\ninputs = "p.npy"\nstore = "o"\n'
    )
    assert load_job_file(tmp_path / "jobs" / "b.toml")["model"] == "surface_1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('verb = "walk"\nmodel = ', "is not valid TOML"),
        ('verb = "walk"\nmodel = "m"\ninputs = "i"\nstore = "s"\nverbb = 1\n', "key 'verbb'"),
        ('verb = "walk"\nmodel = "m"\ninputs = "i"\n', "has no store = ..."),
        ('verb = 3\nmodel = "m"\ninputs = "i"\nstore = "s"\n', "verb in job.toml must be a string"),
        (
            'verb = "walk"\nmodel = "m"\ninputs = "i"\nstore = "s"\n[options]\nseed = 1\n',
            "seed is a job key; move it out of",
        ),
    ],
)
def test_bad_job_files(tmp_path, text, message) -> None:
    (tmp_path / "job.toml").write_text(text)
    with pytest.raises(InputError, match=message):
        load_job_file(tmp_path / "job.toml")


def test_payload_carries_the_model_files(tmp_path) -> None:
    """A worker on another machine loads the same model from the payload alone."""
    src = tmp_path / "src"
    src.mkdir()
    fs.save_model(fs.load_model("surface_2"), src / "net.pt2", example=torch.zeros(1, 2))
    (src / "code.py").write_text(
        "import torch\n\ndef net(x):\n    return torch.tanh(x).sum(-1, keepdim=True)\n"
    )
    x = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    specs = (str(src / "net.pt2"), f"{src / 'code.py'}:net", "surface_1")
    payloads = [ModelSpec(spec).payload() for spec in specs]
    expected = [ModelSpec(spec).load()(x) for spec in specs]
    ident = ModelSpec(specs[0]).identity()
    assert len(ident["model_sha256"]) == 64
    shutil.rmtree(src)  # the files are gone from this "machine": only the payload has them
    for payload, want in zip(payloads, expected, strict=True):
        assert torch.equal(load_payload(payload)(x), want)
