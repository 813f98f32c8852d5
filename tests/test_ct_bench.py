"""Benchmarks of the chest-CT testbed (pytest-benchmark; compare within a group, never assert a time).

group `ct-build`: building testbed patients at the `small` resolution (96x96x48) with the process pool of 2 vs one
process (the reference). extra_info carries volumes/s.
group `ct-load`: reading the testbed through `CTRateDataset` from the preprocessed cache vs from the NIfTI files with
no cache (the reference: what every epoch costs without the cache). extra_info carries volumes/s.
"""
import time, pytest
from medbook.ct.io import CTRateDataset, CTPreprocess
from medbook.data.ct_testbed import build_ct_testbed

N_TRAIN, N_VALID = 6, 2

def _build(home, workers):
    return build_ct_testbed('small', seed=0, workers=workers, force=True, home=home, n_train=N_TRAIN, n_valid=N_VALID)

@pytest.mark.parametrize('workers', [2, 1], ids=['pool-of-2', 'one-process-reference'])
@pytest.mark.benchmark(group='ct-build')
def test_bench_build_testbed(benchmark, tmp_path, workers):
    root = benchmark.pedantic(lambda: _build(tmp_path, workers), rounds=2, iterations=1)
    assert (root/'train/train_6/train_6_a/train_6_a_1.nii.gz').is_file()
    benchmark.extra_info['volumes'] = N_TRAIN + N_VALID
    benchmark.extra_info['volumes_per_s'] = round((N_TRAIN + N_VALID) / benchmark.stats.stats.mean, 2)

@pytest.fixture(scope='module')
def small_root(tmp_path_factory):
    return _build(tmp_path_factory.mktemp('ctbed'), 2)

def _read_all(ds):
    for i in range(len(ds)): ds[i]['image']

@pytest.mark.parametrize('cache', ['cached', 'no-cache-reference'])
@pytest.mark.benchmark(group='ct-load')
def test_bench_load_testbed(benchmark, small_root, tmp_path, cache):
    ds = CTRateDataset(small_root, 'train', prep=CTPreprocess(spacing=None, size=None), cache=(tmp_path/'cache') if cache == 'cached' else False)
    if cache == 'cached': _read_all(ds)  # fill the cache once
    benchmark.pedantic(lambda: _read_all(ds), rounds=5, iterations=1)
    assert ds[0]['image'].shape == (1, 48, 96, 96)
    benchmark.extra_info['volumes_per_s'] = round(len(ds) / benchmark.stats.stats.mean, 1)
