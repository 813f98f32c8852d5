"SimCroP (`medbook.models.simcrop`): the contract's shapes, clear errors, configs, exact resume, save / load."
import dataclasses, json
from pathlib import Path
import pytest, torch
from medbook.train import TrainConfig
from medbook.core import ConfigError, DataError
from medbook.models.simcrop import (LOSS_TERMS, SIMCROP_CONFIGS, SIMCROP_VARIANTS, SimCroP, SimCroPConfig, load_simcrop, pretrain_simcrop,
                                    report_sentences, save_simcrop, simcrop_config)

SMALLER = dict(encoder=dict(img_size=(16, 32, 32), hidden_size=24, num_layers=1, num_heads=4),
               decoder=dict(decoder_hidden=24, decoder_layers=1, decoder_heads=4), embed_dim=24,
               report=dict(hidden=24, layers=1, heads=4, max_len=48), k=1, steps=4, batch_size=3)
REPORTS = [f'There is a {i + 3}-mm nodule in the {lobe} lobe. No pleural effusion. {"Mild emphysema." if i % 2 else "The heart is normal in size."}'
           for i, lobe in enumerate(['left upper', 'left lower', 'right upper', 'right middle', 'right lower', 'left upper'])]

def _cfg(variant='SimCroP', **kw): return simcrop_config('tiny', variant, **{**SMALLER, **kw})

@pytest.fixture(scope='module')
def vols(): return torch.rand(6, 1, 16, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1

def _run(vols, ckpt_dir=None, stop_after=None, variant='SimCroP'):
    cfg = _cfg(variant)
    torch.manual_seed(0); m = SimCroP(cfg)
    tc = TrainConfig(steps=cfg.train.steps, batch_size=cfg.train.batch_size, lr=1e-2, warmup=1, weight_decay=0.05, betas=(0.9, 0.95), seed=3, ckpt_every=1)
    h = pretrain_simcrop(m, vols, REPORTS, tc, ckpt_dir=ckpt_dir, stop_after=stop_after)
    return m, h

def test_contract_shapes(vols):
    torch.manual_seed(0); m = SimCroP(_cfg()).eval()
    assert m.grid == (2, 2, 2) and m.encoder.config.n_patches == 8
    with torch.no_grad():
        img, txt, P = m.embed_image(vols), m.embed_text(REPORTS[:2] + ['There is consolidation.']), m.patch_embeddings(vols[:2])
        sims = m.sentence_patch_similarity(vols[:2], [report_sentences(REPORTS[0]), []])
    assert img.shape == (6, 24) and txt.shape == (3, 24) and P.shape == (2, 8, 24)
    for e in (img, txt, P): assert torch.allclose(e.norm(dim=-1), torch.ones(e.shape[:-1]), atol=1e-5)
    assert [tuple(s.shape) for s in sims] == [(3, 8), (0, 8)]
    assert torch.allclose(sims[0][0], P[0] @ m.embed_text([report_sentences(REPORTS[0])[0]])[0], atol=1e-5)
    out = m.train()(vols[:3], REPORTS[:3])
    assert set(out) == {'loss', *LOSS_TERMS} and torch.isfinite(out['loss'])

def test_variants_build_only_their_terms():
    assert list(SIMCROP_VARIANTS) == ['random init', 'MAE only', 'global CLIP', 'SimCroP w/o fusion', 'SimCroP']
    assert SimCroP(_cfg('global CLIP')).terms == ('clip',)
    assert SimCroP(_cfg('SimCroP w/o fusion')).terms == ('mae', 'mlm', 'clip', 'sent', 'word')
    m = SimCroP(_cfg('MAE only'))
    assert m.terms == ('mae',) and not hasattr(m, 'text') and not hasattr(m, 'fusion')
    with pytest.raises(ConfigError, match='no text tower'): m.embed_text(['x.'])

def test_errors(vols):
    m = SimCroP(_cfg())
    with pytest.raises(DataError, match='2 reports for 3 volumes'): m(vols[:3], REPORTS[:2])
    with pytest.raises(DataError, match='row 1: report has no sentence'): m(vols[:2], [REPORTS[0], '   '])
    with pytest.raises(DataError, match='ViT3D expects volumes of shape'): m(torch.zeros(2, 1, 8, 8, 8), REPORTS[:2])
    with pytest.raises(DataError, match='list of texts'): m.embed_text('one string')
    with pytest.raises(DataError, match='at least 2 volumes'): m(vols[:1], REPORTS[:1])
    with pytest.raises(DataError, match='row 2: report has no sentence'): pretrain_simcrop(m, vols[:3], REPORTS[:2] + [''], TrainConfig(steps=2))
    with pytest.raises(ConfigError, match='nothing to pretrain'): pretrain_simcrop(SimCroP(_cfg('random init')), vols, REPORTS, TrainConfig(steps=2))
    with pytest.raises(ConfigError, match='unknown SimCroP variant'): simcrop_config('tiny', 'CLIP')
    with pytest.raises(ConfigError, match='unknown scale'): simcrop_config('huge')
    with pytest.raises(ConfigError, match='top-k'): _cfg(k=5)

def test_resume_is_bit_identical(vols, tmp_path):
    ref, h_ref = _run(vols)
    _, h1 = _run(vols, tmp_path, stop_after=2)
    assert h1['steps_run'] == 2 and len(h1['loss']) == 2
    res, h2 = _run(vols, tmp_path)
    assert h2['steps_run'] == 2
    assert h2['loss'] == h_ref['loss'] and all(h2[t] == h_ref[t] for t in LOSS_TERMS)   # the whole run's curves, per term
    for (k, a), b in zip(ref.state_dict().items(), res.state_dict().values()): assert torch.equal(a, b), k

def test_configs():
    cfg = _cfg('global CLIP')
    assert isinstance(cfg.model, SimCroPConfig) and cfg.variant == 'global CLIP' and cfg.train.betas == (0.9, 0.95)
    assert (cfg.train.steps, cfg.model.k, cfg['steps'], cfg['embed_dim']) == (4, 1, 4, 24)        # the flat view reads both parts
    assert simcrop_config('small', 'random init').train.steps == 0 and SIMCROP_VARIANTS['random init'] is None
    assert simcrop_config('small').model.text['max_words'] == 128 and SIMCROP_CONFIGS['small'].train.ckpt_every == 37
    with pytest.raises(dataclasses.FrozenInstanceError): cfg.variant = 'other'
    with pytest.raises(ConfigError, match='SimCroPConfig.weights'): _cfg(weights=dict(extra=1.0))
    with pytest.raises(ConfigError, match='unknown SimCroP setting'): _cfg(depth=2)
    with pytest.raises(ConfigError, match='train.batch_size must be >= 2'): _cfg(batch_size=1)
    with pytest.raises(ConfigError, match='SimCroPExperimentConfig.scale'): dataclasses.replace(cfg, scale='huge')

def test_save_load_round_trip(vols, tmp_path):
    m, _ = _run(vols, variant='global CLIP')
    p = m.save_pretrained(tmp_path/'g')
    assert sorted(x.name for x in p.iterdir()) == ['config.json', 'model.safetensors']
    m2 = SimCroP.from_pretrained(p); m.eval()
    with torch.no_grad():
        assert torch.equal(m2.embed_image(vols), m.embed_image(vols)) and torch.equal(m2.embed_text(REPORTS), m.embed_text(REPORTS))
    assert all(torch.equal(a, b) for a, b in zip(m2.state_dict().values(), m.state_dict().values()))
    assert not any(k.startswith('text.trunk') for k in m2.state_dict())       # the frozen MiniLM trunk is the package's, not saved
    assert all(torch.equal(a, b) for a, b in zip(load_simcrop(save_simcrop(m, tmp_path/'w')).state_dict().values(), m.state_dict().values()))
    (p/'model.safetensors').write_bytes(b'not a safetensors file')
    with pytest.raises(DataError, match='model.safetensors'): SimCroP.from_pretrained(p)
    p = m.save_pretrained(tmp_path/'g')
    cfg = json.loads((p/'config.json').read_text()); cfg['embed_dim'] = 12
    (p/'config.json').write_text(json.dumps(cfg))
    with pytest.raises(DataError, match='do not fit'): SimCroP.from_pretrained(p)
    assert sorted(x.name for x in tmp_path.iterdir()) == ['g', 'w']
