"""Shared test settings, and the markers that let a developer leave out the slow tests.

`make test` (and CI) runs every test. While working on one piece, `pytest -m "not slow"` skips the tests that start
processes or time things; the markers are set here from the file names, so a new test file of a kind gets its marker
without remembering to add it:

- `torchrun`: starts two processes with torchrun (test_*_torchrun.py, and test_train.py's two-rank test);
- `resume`: kills a training process with SIGKILL and resumes it (test_resume.py);
- `bench`: a pytest-benchmark measurement (test_bench_*.py, test_ct_bench.py);
- `slow`: any of the three.
"""
import os
import pytest
os.environ.setdefault('MEDBOOK_PROGRESS', '0')
os.environ.setdefault('HF_HUB_OFFLINE', '1')

MARKERS = {'torchrun': 'starts two processes with torchrun', 'resume': 'kills a training process and resumes it',
           'bench': 'a pytest-benchmark measurement', 'slow': 'torchrun, resume or bench: skip with -m "not slow"'}

def pytest_configure(config):
    for name, text in MARKERS.items(): config.addinivalue_line('markers', f'{name}: {text}')

def _kinds(item) -> set[str]:
    f = item.path.name
    kinds = {m.name for m in item.iter_markers() if m.name in MARKERS}
    if f.endswith('_torchrun.py'): kinds.add('torchrun')
    if f == 'test_resume.py' and 'sigkill' in item.name: kinds.add('resume')
    if f.startswith('test_bench_') or f == 'test_ct_bench.py' or 'benchmark' in getattr(item, 'fixturenames', ()): kinds.add('bench')
    return kinds

def pytest_collection_modifyitems(config, items):
    for item in items:
        kinds = _kinds(item)
        for k in kinds: item.add_marker(getattr(pytest.mark, k))
        if kinds: item.add_marker(pytest.mark.slow)
