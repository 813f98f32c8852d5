"""Tests of medbook.tokenizers: round trips, shapes, bad input, real-format fixtures, and a patchify benchmark."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medbook.core import DataError, ConfigError, DATASETS
from medbook.tokenizers import (patchify, unpatchify, pad_to_patch, frame_signal, n_frames, train_bpe, load_ppg_csv, load_dicom_ecg,
                                log_mel, audio_token_count, synth_cough, synth_enose, enose_tokens, MultimodalTokenizer, ModalityItem,
                                MultimodalCollator, scatter_features, MODALITY_TOKENS, special_tokens)

TEXTS = ['No pleural effusion or pneumothorax.', 'Small left pleural effusion.', 'Heart size is normal.', 'Mild cardiomegaly.'] * 10


@pytest.fixture(scope='module')
def bpe():
    return train_bpe(TEXTS, vocab_size=400)


@pytest.mark.parametrize('shape,patch', [((2, 1, 16, 32, 32), (8, 16, 16)), ((1, 3, 4, 6, 10), (2, 3, 5)),
                                         ((3, 2, 32, 48), (16, 16)), ((1, 1, 8, 8), (8, 8))])
def test_patchify_round_trip(shape, patch):
    x = torch.randn(shape)
    t = patchify(x, patch)
    n = int(np.prod([s // p for s, p in zip(shape[2:], patch)]))
    assert t.shape == (shape[0], n, shape[1] * int(np.prod(patch)))
    assert torch.equal(unpatchify(t, patch, shape[2:]), x)


def test_patchify_matches_unfold_and_conv():
    x = torch.randn(2, 3, 32, 64)
    assert torch.equal(patchify(x, (16, 16)), F.unfold(x, 16, stride=16).transpose(1, 2))
    v = torch.randn(1, 2, 8, 16, 16)
    conv = torch.nn.Conv3d(2, 5, (4, 8, 8), stride=(4, 8, 8))
    ref = conv(v).flatten(2).transpose(1, 2)
    assert torch.allclose(patchify(v, (4, 8, 8)) @ conv.weight.reshape(5, -1).T + conv.bias, ref, atol=1e-5)


def test_patchify_bad_input():
    with pytest.raises(DataError, match='smaller than one patch'): patchify(torch.zeros(1, 1, 4, 32, 32), (8, 16, 16))
    with pytest.raises(DataError, match='not a multiple'): patchify(torch.zeros(1, 1, 8, 30, 32), (8, 16, 16))
    with pytest.raises(DataError, match='NaN'): patchify(torch.tensor([[[[float('nan')] * 2] * 2]]), (2, 2))
    with pytest.raises(ConfigError): patchify(torch.zeros(1, 1, 8), (8,))
    with pytest.raises(DataError): unpatchify(torch.zeros(1, 3, 16), (4, 4), (8, 8))
    assert pad_to_patch(torch.zeros(1, 1, 9, 17), (8, 16)).shape == (1, 1, 16, 32)


def test_frame_signal():
    x = np.sin(np.linspace(0, 20, 1000))
    t = frame_signal(x, 100, target_fs=50, frame_len=50, hop=25)
    assert t.shape == (n_frames(500, 50, 25), 1, 50)
    assert abs(float(t.mean())) < 0.2
    multi = frame_signal(np.stack([x, 2 * x + 3]), 100, frame_len=100)
    assert torch.allclose(multi[:, 0], multi[:, 1], atol=1e-5)       # z-scoring removes gain and offset
    with pytest.raises(DataError, match='shorter than one frame'): frame_signal(x[:10], 100, frame_len=50)
    with pytest.raises(DataError, match='shorter than one frame'): frame_signal(x[:120], 100, target_fs=25, frame_len=50)
    y = x.copy(); y[3] = np.inf
    with pytest.raises(DataError, match='sample 3'): frame_signal(y, 100)
    with pytest.raises(DataError, match='must be'): frame_signal(np.zeros((2, 2, 2)), 100)


def test_ppg_csv_fixtures(tmp_path):
    # heartpy's two layouts, written here in exactly that format
    (tmp_path/'data.csv').write_text('\n'.join(str(500 + 10 * np.sin(i / 5)) for i in range(300)))
    x, fs = load_ppg_csv(tmp_path/'data.csv', fs=100)
    assert x.shape == (300,) and fs == 100
    (tmp_path/'data2.csv').write_text('timer,hr\n' + '\n'.join(f'{i * 8.5479},{500 + i % 7}' for i in range(200)))
    x, fs = load_ppg_csv(tmp_path/'data2.csv')
    assert len(x) == 200 and abs(fs - 116.99) < 0.05
    (tmp_path/'bad.csv').write_text('timer,pulse\n0,1\n1,2\n')
    with pytest.raises(DataError, match='expected columns timer, hr'): load_ppg_csv(tmp_path/'bad.csv')
    (tmp_path/'empty.csv').write_text('')
    with pytest.raises(DataError, match='empty.csv: not a readable CSV'): load_ppg_csv(tmp_path/'empty.csv')
    with pytest.raises(DataError, match='no such file'): load_ppg_csv(tmp_path/'nope.csv')


def test_dicom_ecg(tmp_path):
    ecg, fs, leads = load_dicom_ecg()
    assert ecg.shape == (12, 10000) and fs == 1000 and len(leads) == 12 and np.isfinite(ecg).all()
    import pydicom
    from pydicom.data import get_testdata_file
    ds = pydicom.dcmread(get_testdata_file('CT_small.dcm'))
    ds.save_as(tmp_path/'ct.dcm')
    with pytest.raises(DataError, match='no WaveformSequence'): load_dicom_ecg(tmp_path/'ct.dcm')


def test_audio():
    a = synth_cough(seconds=1.0, seed=3)
    assert a.dtype == np.float32 and np.abs(a).max() <= 0.5 + 1e-6
    m = log_mel(a)
    assert m.shape == (80, 100) and torch.isfinite(m).all()
    assert log_mel(a, pad_to_30s=True).shape == (80, 3000)
    assert log_mel(synth_cough(seconds=1.0, sr=8000), sr=8000).shape == (80, 100)   # resampled to 16 kHz first
    assert audio_token_count(16000) == 25
    with pytest.raises(DataError, match='mono'): log_mel(np.zeros((2, 16000), np.float32))


def test_enose():
    x = synth_enose('ammonia', seconds=30, seed=2)
    assert x.shape == (8, 300) and (x > 0).all()
    assert enose_tokens(x).shape == (15, 8, 20)
    with pytest.raises(ConfigError, match='unknown odour'): synth_enose('roses')
    x[2, 100] = np.nan
    with pytest.raises(DataError, match='NaN'): enose_tokens(x)


def test_bpe_round_trip_and_save(bpe, tmp_path):
    from transformers import AutoTokenizer
    s = 'Small right apical pneumothorax (2.5 cm); çà [DEID] <|image_pad|>'
    assert bpe.decode(bpe(s)['input_ids']) == s
    assert all(len(bpe.tokenize(t)) == 1 for t in special_tokens())
    bpe.save_pretrained(tmp_path/'tok')
    again = AutoTokenizer.from_pretrained(str(tmp_path/'tok'))
    assert again(s)['input_ids'] == bpe(s)['input_ids'] and again.pad_token == '<pad>'
    assert 'bpe-tokenizer' in DATASETS and 'reports' in DATASETS


def test_sequence_builder_and_collator(bpe):
    mm = MultimodalTokenizer(bpe)
    items = [ModalityItem('ct', torch.randn(5, 4)), ModalityItem('signal', torch.randn(2, 4))]
    enc = mm.encode('<ct> and pulse <signal>: findings?', items, target='Mild cardiomegaly.')
    c = mm.counts(enc)
    assert c['ct'] == 5 and c['signal'] == 2
    ids = enc['input_ids']
    s, p, e = mm.ids['ct']
    assert ids[ids.index(s) + 1: ids.index(e)] == [p] * 5
    with pytest.raises(DataError, match='empty text'): mm.encode('   ', [])
    with pytest.raises(DataError, match='markers'): mm.encode('just text', items)
    with pytest.raises(DataError, match=r'\(N >= 1'): ModalityItem('ct', torch.zeros(0, 4))
    b = MultimodalCollator(bpe.pad_token_id)([enc, mm.encode('Only text here.')])
    assert b['input_ids'].shape[0] == 2 and b['attention_mask'][1].sum() == len(mm.encode('Only text here.')['input_ids'])
    assert b['ct_features'].shape == (5, 4)
    emb = torch.zeros(2, b['input_ids'].shape[1], 4)
    out = scatter_features(emb, b['input_ids'], mm.pad_ids['signal'], b['signal_features'])
    assert torch.equal(out[b['input_ids'] == mm.pad_ids['signal']], items[1].tokens)
    with pytest.raises(DataError, match='different sizes'):
        MultimodalCollator(bpe.pad_token_id)([mm.encode('<ct>', [ModalityItem('ct', torch.zeros(1, 3))]), mm.encode('<ct>', [ModalityItem('ct', torch.zeros(1, 4))])])
    with pytest.raises(ConfigError): MultimodalCollator(0, padding_side='middle')


# --- performance: patchify (reshape/permute) against the same tokens made by unfold, measured in the same run ---
VOL = torch.randn(2, 1, 64, 128, 128)


def _unfold_reference(x, p=(8, 16, 16)):
    return x.unfold(2, p[0], p[0]).unfold(3, p[1], p[1]).unfold(4, p[2], p[2]).permute(0, 2, 3, 4, 1, 5, 6, 7).reshape(x.shape[0], -1, x.shape[1] * p[0] * p[1] * p[2])


def test_unfold_reference_is_the_same():
    assert torch.equal(_unfold_reference(VOL), patchify(VOL, (8, 16, 16)))


@pytest.mark.benchmark(group='patchify-3d')
def test_bench_patchify(benchmark):
    benchmark(patchify, VOL, (8, 16, 16))


@pytest.mark.benchmark(group='patchify-3d')
def test_bench_patchify_unchecked(benchmark):
    benchmark(patchify, VOL, (8, 16, 16), False)


@pytest.mark.benchmark(group='patchify-3d')
def test_bench_unfold_reference(benchmark):
    benchmark(_unfold_reference, VOL)


def test_image_loaders_bad_files(tmp_path):
    from medbook.tokenizers import load_demo_ct, load_demo_radiograph
    (tmp_path/'bad.nii.gz').write_bytes(b'\x1f\x8b\x08 not really gzip')
    with pytest.raises(DataError, match='bad.nii.gz: cannot read the CT'): load_demo_ct(path=tmp_path/'bad.nii.gz')
    import nibabel as nib
    nib.save(nib.Nifti1Image(np.zeros((4, 4), np.float32), np.eye(4)), tmp_path/'flat.nii.gz')
    with pytest.raises(DataError, match='expected a 3-D volume'): load_demo_ct(path=tmp_path/'flat.nii.gz')
    v = np.zeros((8, 8, 8), np.float32); v[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(v, np.eye(4)), tmp_path/'nan.nii.gz')
    with pytest.raises(DataError, match='1 NaN or infinite voxels'): load_demo_ct(path=tmp_path/'nan.nii.gz')
    ok = np.random.default_rng(0).uniform(-1000, 400, (16, 16, 8)).astype(np.float32)
    nib.save(nib.Nifti1Image(ok, np.eye(4)), tmp_path/'ok.nii.gz')
    assert load_demo_ct((8, 16, 16), path=tmp_path/'ok.nii.gz').shape == (1, 1, 8, 16, 16)
    (tmp_path/'x.dcm').write_bytes(b'nope')
    with pytest.raises(DataError, match='x.dcm: cannot read the radiograph'): load_demo_radiograph(path=tmp_path/'x.dcm')
