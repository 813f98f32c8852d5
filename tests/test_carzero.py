"""CARZero (notebook 10): DRR projection sanity, the CXR CSV loader's errors, decoder shapes and independence, loss against a
hand computation, inference, prompt alignment rules and the LLM interface."""
import math
import numpy as np
import pandas as pd
import pytest
import torch

from medbook.core import DataError, ConfigError, FunctionClient
from medbook.models.brgsa import NO_FINDING, finding_sentence
from medbook.models.carzero import (parallel_drr, drr_display, volume_drr, read_cxr_csv, CrossAttentionDecoder, similarity_head,
                                    carzero_loss, CARZero, CLIPDual, rule_align, align_texts, SYNONYM_PROMPTS, ALIGN_SYNONYMS,
                                    unseen_synonyms, MU_WATER, train_carzero, CARZERO_CONFIGS)


def test_drr_beer_lambert_and_orientation():
    vol = torch.full((6, 40, 5), -1000.)             # air
    vol[:, 5:30, :] = 0.                              # 25 voxels of water
    p = parallel_drr(vol, (1., 2., 3.))
    assert p.shape == (5, 6)
    torch.testing.assert_close(p, torch.full((5, 6), MU_WATER * 25 * 2))
    # transmitted intensity follows Beer-Lambert: I/I0 = exp(-p)
    assert abs(math.exp(-float(p[0, 0])) - math.exp(-MU_WATER * 50)) < 1e-6
    # a bone block in the patient's right (high x in RAS) and low z lands on the viewer's left, bottom row
    v2 = torch.full((6, 10, 5), -1000.); v2[5, :, 0] = 1000.
    p2 = parallel_drr(v2, (1., 1., 1.))
    assert torch.nonzero(p2).tolist() == [[4, 0]]
    torch.testing.assert_close(p2[4, 0], torch.tensor(MU_WATER * 2 * 10))
    img = drr_display(p, (10, 12))
    assert img.shape == (1, 10, 12) and 0 <= img.min() and img.max() <= 1


def test_drr_of_a_windowed_volume():
    vol = torch.zeros(1, 8, 10, 12)                   # (1, z, y, x), x = 0 -> 0 HU (water)
    img = volume_drr(vol, (1., 1., 1.), (8, 12), p_max=1.)
    torch.testing.assert_close(img, torch.full((1, 8, 12), MU_WATER * 10))
    with pytest.raises(DataError, match=r'\(1, D, H, W\)'): volume_drr(torch.zeros(8, 10, 12), (1, 1, 1))


def test_drr_bad_input():
    with pytest.raises(DataError, match='3-D'): parallel_drr(torch.zeros(3, 3), (1, 1, 1))
    with pytest.raises(DataError, match='spacing'): parallel_drr(torch.zeros(3, 3, 3), (1, 1))
    with pytest.raises(DataError, match='NaN'): parallel_drr(torch.full((3, 3, 3), float('nan')), (1, 1, 1))


def _write_fixture(d, n=4):
    from PIL import Image
    (d/'images').mkdir()
    rows = []
    for i in range(n):
        Image.fromarray((np.random.default_rng(i).random((8, 8)) * 255).astype(np.uint8), mode='L').save(d/'images'/f'{i}.png')
        rows.append({'Path': f'images/{i}.png', 'Split': 'train' if i < 3 else 'valid', 'Frontal/Lateral': 'Frontal' if i != 1 else 'Lateral',
                     'Report Impression': 'Cardiomegaly.' if i % 2 else 'No acute abnormality.', 'Cardiomegaly': i % 2})
    pd.DataFrame(rows).to_csv(d/'r.csv', index=False)
    return pd.DataFrame(rows)


def test_cxr_csv_loader(tmp_path):
    _write_fixture(tmp_path)
    d = read_cxr_csv(tmp_path/'r.csv', 'train')
    assert d['images'].shape == (2, 1, 8, 8) and d['label_names'] == ['Cardiomegaly']     # the lateral view is dropped
    assert d['impressions'] == ['No acute abnormality.', 'No acute abnormality.']
    assert read_cxr_csv(tmp_path/'r.csv', frontal_only=False)['images'].shape[0] == 4


def test_cxr_csv_errors(tmp_path):
    df = _write_fixture(tmp_path)
    df.drop(columns=['Split']).to_csv(tmp_path/'a.csv', index=False)
    with pytest.raises(DataError, match='a.csv: missing column'): read_cxr_csv(tmp_path/'a.csv')
    d = df.copy(); d.loc[2, 'Report Impression'] = ''; d.to_csv(tmp_path/'b.csv', index=False)
    with pytest.raises(DataError, match='b.csv row 4: Report Impression is empty'): read_cxr_csv(tmp_path/'b.csv')
    (tmp_path/'images'/'0.png').write_bytes(b'not a png')
    with pytest.raises(DataError, match='cannot read image images/0.png'): read_cxr_csv(tmp_path/'r.csv')
    with pytest.raises(DataError, match='file not found'): read_cxr_csv(tmp_path/'none.csv')
    with pytest.raises(DataError, match="no frontal image in split 'test'"): read_cxr_csv(tmp_path/'r.csv', 'test')


def test_decoder_shapes_and_query_independence():
    torch.manual_seed(0)
    dec = CrossAttentionDecoder(24, layers=3, heads=4, ffn=48).eval()
    q, m = torch.randn(5, 7, 24), torch.randn(5, 9, 24)
    out = dec(q, m)
    assert out.shape == (5, 7, 24)
    q2 = q.clone(); q2[:, 3] += 1
    torch.testing.assert_close(dec(q2, m)[:, [0, 1, 2, 4, 5, 6]], out[:, [0, 1, 2, 4, 5, 6]], atol=1e-5, rtol=0)
    n_attn = sum(isinstance(x, torch.nn.MultiheadAttention) for x in dec.modules())
    assert n_attn == 3                                                 # one (cross-)attention per layer, no self-attention
    assert similarity_head(24)(out).shape == (5, 7, 1)
    with pytest.raises(ValueError, match='agree on B and d'): dec(q, torch.randn(4, 9, 24))


def test_loss_against_hand_computation():
    S1 = torch.tensor([[1., 2., 0.], [0., 1., 0.], [3., 0., 1.]]); S2 = torch.tensor([[0., 0., 1.], [1., 0., 0.], [0., 2., 2.]])
    def ce(S):
        n = len(S)
        return -sum(math.log(math.exp(S[i][i]) / sum(math.exp(S[i][j]) for j in range(n))) for i in range(n)) / n
    want = (ce(S1.tolist()) + ce(S1.T.tolist())) / 2 + (ce(S2.tolist()) + ce(S2.T.tolist())) / 2
    assert abs(float(carzero_loss(S1, S2)) - want) < 1e-5
    with pytest.raises(ValueError, match='square'): carzero_loss(torch.zeros(2, 3), torch.zeros(2, 2))


def test_carzero_directions_and_inference():
    torch.manual_seed(0)
    m = CARZero(dim=16, img_channels=(4, 8), layers=1, heads=2, ffn=32, head_widths=(16,)).eval()
    imgs = torch.rand(3, 1, 16, 16); txts = ['There is emphysema.', 'There is cardiomegaly.']
    s_i2t, s_t2i = m.similarity(m.image(imgs), m.text(txts))
    assert s_i2t.shape == (3, 2) and s_t2i.shape == (2, 3)
    torch.testing.assert_close(m.scores(imgs, txts), (s_i2t + s_t2i.T) / 2)
    # a text's score for an image does not depend on which other texts are scored with it
    torch.testing.assert_close(m.scores(imgs, txts[:1]), m.scores(imgs, txts)[:, :1], atol=1e-5, rtol=0)
    assert CLIPDual(dim=16, img_channels=(4, 8)).scores(imgs, txts).shape == (3, 2)


def test_prompt_alignment_rules():
    assert rule_align('Small left pleural effusion. Right lower lobe nodule (9 mm).') == 'There is pleural effusion. There is lung nodule.'
    assert rule_align('Normal chest CT.') == NO_FINDING
    assert rule_align('No hydrothorax.') == NO_FINDING
    for n, p in SYNONYM_PROMPTS.items(): assert rule_align(p) == finding_sentence(n), n
    for n in SYNONYM_PROMPTS: assert rule_align(finding_sentence(n)) == finding_sentence(n)      # a fixed point
    assert set(SYNONYM_PROMPTS) <= set(ALIGN_SYNONYMS)
    assert unseen_synonyms(['Hydrothorax on the left.'])['Pleural effusion'] is False


def test_prompt_alignment_through_llm_client():
    seen = []
    out = align_texts(['Mild emphysema.', 'Mild emphysema.'], FunctionClient(lambda p: seen.append(p) or '1) There is emphysema.'))
    assert out == ['There is emphysema.'] * 2 and len(seen) == 1 and 'Text:\nMild emphysema.' in seen[0]
    with pytest.raises(DataError, match='texts row 0'): align_texts([''])
    with pytest.raises(DataError, match='not one string'): align_texts('Cardiomegaly.')


def test_train_rejects_unknown_kind():
    with pytest.raises(ConfigError, match="kind must be"): train_carzero({}, CARZERO_CONFIGS['tiny'], kind='siglip')


def test_models_round_trip(tmp_path):
    "CARZero and its CLIP baseline save as config.json + model.safetensors and load back with identical weights and scores."
    import torch
    from medbook.models.carzero import CARZero, CLIPDual
    imgs, txts = torch.rand(3, 1, 32, 32), ['There is emphysema.', 'No acute abnormality.']
    for cls, kw in ((CARZero, dict(dim=16, img_channels=(4, 8), layers=1, heads=2, ffn=32, head_widths=(16,))), (CLIPDual, dict(dim=16, img_channels=(4, 8)))):
        torch.manual_seed(0); m = cls(**kw).eval()
        m.save_pretrained(tmp_path/cls.__name__); back = cls.from_pretrained(tmp_path/cls.__name__)
        assert back.state_dict().keys() == m.state_dict().keys()
        assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), back.state_dict().values()))
        assert torch.allclose(back.scores(imgs, txts), m.scores(imgs, txts))


def test_experiment_config_validates_and_builds_model_configs():
    from dataclasses import replace
    from medbook.models.carzero import CARZeroExperimentConfig, CARZeroConfig, CLIPDualConfig
    tiny = CARZERO_CONFIGS['tiny']
    assert tiny.train.steps == 6 and CARZERO_CONFIGS['small'].train.steps == 600
    assert isinstance(tiny.model_config('carzero'), CARZeroConfig) and isinstance(tiny.model_config('clip'), CLIPDualConfig)
    assert replace(tiny, head_widths=[8]).head_widths == (8,)
    with pytest.raises(ConfigError, match='heads=4 must divide dim=30'): CARZeroExperimentConfig(dim=30)
    with pytest.raises(ConfigError, match="kind must be 'carzero' or 'clip'"): tiny.model_config('siglip')


def test_saved_baseline_is_not_loaded_as_carzero(tmp_path):
    "CLIPDual has its own config class: a saved baseline refuses to load as CARZero, and neither saves the frozen MiniLM."
    m = CLIPDual(dim=16, img_channels=(4, 8)); m.save_pretrained(tmp_path/'clip')
    with pytest.raises(DataError, match="a saved 'medbook-clip-dual' model"): CARZero.from_pretrained(tmp_path/'clip')
    cz = CARZero(dim=16, img_channels=(4, 8), layers=1, heads=2, ffn=32, head_widths=(16,))
    for model in (m, cz): assert not any(k.startswith('text.text') for k in model.state_dict())
