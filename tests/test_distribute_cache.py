"""Corpus feature caches built over several processes: the same bytes for 1 and 2 workers,
and an interrupted extraction resumes with the files it had finished."""

from __future__ import annotations

import pytest

from edgeaffect.data import jobs


def _square(job):
    return {"i": job, "sq": job * job}


_calls: list = []


def _flaky(job):
    _calls.append(job)
    if job == 3 and len(_calls) < 5:
        raise KeyboardInterrupt  # stands for a kill in the middle of the corpus
    return _square(job)


def test_an_interrupted_extraction_resumes_with_the_files_it_finished(tmp_path):
    import io

    folder, log = tmp_path / "cache.parts", io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        jobs.map_files(_flaky, list(range(6)), "jobs", workers=1, resume=folder, log=log)
    assert _calls == [0, 1, 2, 3] and len(list(folder.iterdir())) == 3
    results = jobs.map_files(_flaky, list(range(6)), "jobs", workers=1, resume=folder, log=log)
    assert results == [_square(i) for i in range(6)]
    assert _calls == [0, 1, 2, 3, 3, 4, 5]  # only the files not done before
    assert "3 of 6 files done before, resuming" in log.getvalue()
    # Another job list never reuses a result: each is keyed by its position and its job.
    assert jobs.map_files(_square, [10, 1], "jobs", workers=1, resume=folder) == [_square(10), _square(1)]
    jobs.forget(folder)
    assert not folder.exists()


def test_workers_default_and_bad_value(monkeypatch):
    from edgeaffect.errors import InputError

    monkeypatch.setenv(jobs.ENV, "3")
    assert jobs.default_workers() == 3
    jobs.set_workers(1)
    try:
        assert jobs.default_workers() == 1
    finally:
        jobs.set_workers(None)
    with pytest.raises(InputError, match="--workers must be at least 1"):
        jobs.set_workers(0)


def test_spectrotemporal_cache_is_the_same_bytes_for_one_and_two_workers(tmp_path):
    """log-Mel + VLNEP of 9 recordings (above the 8 where extraction goes parallel)."""
    from edgeaffect.families.spectrotemporal.dataset import build_dataset
    from edgeaffect.families.spectrotemporal.synthetic import generate_avec2013
    from edgeaffect.contract import get_model

    generate_avec2013(tmp_path / "corpus", per_partition=3, seconds=8.0, seed=1)
    c = get_model("spectrotemporal-tiny").config
    caches = {}
    for workers in (1, 2):
        build_dataset(tmp_path / "corpus", c.features, c.vlnep_rule, cache_dir=tmp_path / f"w{workers}",
                      workers=workers)
        (cache,) = (tmp_path / f"w{workers}").glob("spectrotemporal-*.npz")
        assert not list((tmp_path / f"w{workers}").glob("*.parts"))  # the per-file results are gone
        caches[workers] = cache
    assert caches[1].name == caches[2].name
    assert caches[1].read_bytes() == caches[2].read_bytes()
