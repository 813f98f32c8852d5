"""BrgSA (notebook 09): summariser rules and LLM interface, knowledge bank, loss against a hand computation, zero-shot scoring, bad input."""
import math
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medbook.core import DataError, ConfigError, FunctionClient, LLMClient
from medbook.models.brgsa import (KnowledgeBank, brgsa_loss, zero_shot_scores, rule_summary, summarise_reports, rule_summariser,
                                  parse_summary, sample_summary, finding_sentence, class_prompts, rare_labels, NO_FINDING,
                                  augment_volumes, BRGSA_CONFIGS)


def test_bank_shapes_and_orthogonal_init():
    torch.manual_seed(0)
    kb = KnowledgeBank(64, 2048)
    assert kb.W.shape == (2048, 64)
    torch.testing.assert_close(kb.W.T @ kb.W, torch.eye(64), atol=1e-4, rtol=0)
    z, xh = kb(torch.randn(5, 64))
    assert z.shape == (5, 2048) and xh.shape == (5, 64)
    torch.testing.assert_close(z.sum(-1), torch.ones(5))
    assert (z >= 0).all()
    # x_hat is a convex combination of bank rows: inside their bounding box
    assert (xh <= kb.W.max(0).values + 1e-6).all() and (xh >= kb.W.min(0).values - 1e-6).all()


def test_bank_bad_input():
    kb = KnowledgeBank(8, 16)
    with pytest.raises(ValueError, match='width 4'): kb(torch.randn(2, 4))
    with pytest.raises(ValueError, match='NaN'): kb(torch.full((2, 8), float('nan')))
    with pytest.raises(ConfigError): KnowledgeBank(0)


def _nce(a, b, s=10.):
    a, b = F.normalize(a.double(), dim=1), F.normalize(b.double(), dim=1)
    L = (s * a @ b.T).tolist(); n = len(L)
    r = -sum(math.log(math.exp(L[i][i]) / sum(math.exp(L[i][j]) for j in range(n))) for i in range(n)) / n
    c = -sum(math.log(math.exp(L[i][i]) / sum(math.exp(L[j][i]) for j in range(n))) for i in range(n)) / n
    return (r + c) / 2


def test_loss_against_hand_computation():
    g = torch.Generator().manual_seed(1)
    v, t = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    kb = KnowledgeBank(3, 5)
    W = kb.W.detach().double()
    def bridge(x):
        out = []
        for row in x.double().tolist():
            e = [math.exp(sum(r * w for r, w in zip(row, W[k].tolist()))) for k in range(5)]
            out.append([sum(e[k] / sum(e) * W[k, j].item() for k in range(5)) for j in range(3)])
        return torch.tensor(out, dtype=torch.float64)
    vh, th = bridge(v), bridge(t)
    want = _nce(v, t) + 0.5 * (((vh - v.double()) ** 2).mean() + ((th - t.double()) ** 2).mean()) + _nce(vh, th)
    out = brgsa_loss(v, t, kb)
    assert abs(out['loss'].item() - float(want)) < 1e-4
    assert abs(float(brgsa_loss(v, t)['loss']) - _nce(v, t)) < 1e-4     # no bank: CLIP


def test_scoring():
    v = torch.tensor([[2., 0.], [0., 1.]]); tc = torch.tensor([[1., 0.], [1., 1.]])
    torch.testing.assert_close(zero_shot_scores(v, tc), torch.tensor([[1., 2 ** -.5], [0., 2 ** -.5]]))
    kb = KnowledgeBank(2, 4)
    s = zero_shot_scores(v, tc, kb)
    vh = kb(v)[1]
    want = (F.normalize(v, dim=1) @ F.normalize(tc, dim=1).T + F.normalize(vh, dim=1) @ F.normalize(tc, dim=1).T) / 2
    torch.testing.assert_close(s, want)
    with pytest.raises(ValueError, match='same width'): zero_shot_scores(torch.randn(2, 3), tc)


def test_summariser_rules():
    rep = ('Trachea and both main bronchi are patent. There is a small amount of fluid in the left pleural space (12 mm). '
           'A 9 mm solid nodule is seen in the right lower lobe. No pericardial effusion. Small left pleural effusion. Right lower lobe nodule (9 mm).')
    assert rule_summary(rep) == ['There is pleural effusion in the left pleural space.', 'There is lung nodule in the right lower lobe.']
    assert rule_summary('No pulmonary nodule or mass is seen. Heart size is normal.') == [NO_FINDING]
    assert finding_sentence('Emphysema') == 'There is emphysema.'
    assert class_prompts(['Cardiomegaly']) == ['There is cardiomegaly.']


def test_summariser_through_llm_client():
    calls = []
    def fake(prompt):
        calls.append(prompt); return '* There is consolidation in the right lower lobe.\n\n* There is atelectasis.'
    client = FunctionClient(fake)
    assert isinstance(client, LLMClient) and isinstance(rule_summariser(), LLMClient)
    out = summarise_reports(['Consolidation in the right lower lobe.'], client)
    assert out == [['There is consolidation in the right lower lobe.', 'There is atelectasis.']]
    assert 'Report:\nConsolidation in the right lower lobe.' in calls[0]


def test_bad_input_raises_data_error():
    with pytest.raises(DataError, match='reports row 1: the report is empty'): summarise_reports(['Cardiomegaly.', ''])
    with pytest.raises(DataError, match='not one string'): summarise_reports('Cardiomegaly.')
    with pytest.raises(DataError, match='no sentence'): parse_summary('  \n - ')
    with pytest.raises(DataError, match='answered 0 of 1'):
        summarise_reports(['Cardiomegaly.'], type('C', (), {'generate': lambda self, p, **k: [], 'chat': None})())
    with pytest.raises(DataError, match='empty summary'): sample_summary([])


def test_rare_labels_from_training_prevalence():
    y = np.zeros((100, 18), int); y[:30, 0] = 1; y[:3, 1] = 1; y[:4, 2] = 1
    from medbook.ct.io import CT_RATE_ABNORMALITIES as N
    assert rare_labels(y) == [N[1], N[2]]


def test_augment_keeps_shape_and_is_seeded():
    x = torch.randn(3, 1, 8, 8, 8)
    a = augment_volumes(x, torch.Generator().manual_seed(0)); b = augment_volumes(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)


def test_configs_cover_every_scale():
    assert set(BRGSA_CONFIGS) == {'tiny', 'small', 'full'}


def test_brgsa_model_round_trip(tmp_path):
    "BrgSAModel saves as config.json + model.safetensors and loads back with identical weights and bridged embeddings."
    from medbook.models.brgsa import BrgSAModel
    torch.manual_seed(0); m = BrgSAModel(dim=16, channels=(4, 8), n_slots=32).eval()
    m.save_pretrained(tmp_path/'b'); back = BrgSAModel.from_pretrained(tmp_path/'b')
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), back.state_dict().values()))
    vol = torch.randn(2, 1, 16, 16, 16)
    assert torch.allclose(back.embed(vol, ['a', 'b'])['v_hat'], m.embed(vol, ['a', 'b'])['v_hat'])


def test_experiment_config_validates_and_builds_the_model_config():
    from dataclasses import replace
    from medbook.models.brgsa import BrgSAExperimentConfig
    from medbook.train import TrainConfig
    tiny = BRGSA_CONFIGS['tiny']
    assert tiny.train.steps == 8 and BRGSA_CONFIGS['small'].train.steps == 600
    mc = tiny.model_config(use_bank=False)
    assert (mc.dim, tuple(mc.channels), mc.pool, mc.use_bank) == (32, (8, 16, 32), 1, False)
    assert replace(tiny, channels=[4, 8]).channels == (4, 8)
    with pytest.raises(ConfigError, match="eval_split must be 'train' or 'valid'"): BrgSAExperimentConfig(eval_split='test')
    with pytest.raises(ConfigError, match='testbed: unknown scale'): BrgSAExperimentConfig(testbed='huge')
    with pytest.raises(ConfigError, match='train.batch_size must be >= 2'): BrgSAExperimentConfig(train=TrainConfig(batch_size=1))


def test_train_keeps_the_init_order():
    "train_brgsa seeds the encoder, then re-seeds before the bank: CLIP and BrgSA start from the same encoder at a seed."
    from dataclasses import replace
    from medbook.core import seed_everything
    from medbook.models.brgsa import train_brgsa, CTDualEncoder
    cfg = replace(BRGSA_CONFIGS['tiny'], channels=(4, 8), dim=16, n_slots=32, train=replace(BRGSA_CONFIGS['tiny'].train, steps=0))
    train = dict(volumes=torch.randn(4, 1, 16, 16, 16), summaries=[['There is emphysema.']] * 4)
    bank_model, _ = train_brgsa(train, cfg, True, seed=3, device='cpu')
    clip_model, _ = train_brgsa(train, cfg, False, seed=3, device='cpu')
    seed_everything(3); enc = CTDualEncoder(16, (4, 8), pool=1)
    torch.manual_seed(3 + 10_000); bank = KnowledgeBank(16, 32)
    for m in (bank_model, clip_model):
        assert all(torch.equal(a, b) for a, b in zip(m.encoder.state_dict().values(), enc.state_dict().values()))
    assert torch.equal(bank_model.bank.W, bank.W) and clip_model.bank is None


def test_train_logs_every_loss_term():
    from dataclasses import replace
    from medbook.models.brgsa import train_brgsa
    cfg = replace(BRGSA_CONFIGS['tiny'], channels=(4, 8), dim=16, n_slots=32, train=replace(BRGSA_CONFIGS['tiny'].train, steps=2, batch_size=2))
    train = dict(volumes=torch.randn(4, 1, 16, 16, 16), summaries=[['There is emphysema.'], [NO_FINDING], ['There is cardiomegaly.'], ['There is atelectasis.']])
    m, losses = train_brgsa(train, cfg, True, seed=0, device='cpu')
    m2, losses2 = train_brgsa(train, cfg, True, seed=0, device='cpu')
    assert len(losses) == 2 and losses == losses2    # the drawn-up-front schedule makes the run exactly repeatable


def test_brgsa_round_trip_without_bank_and_without_the_frozen_tower(tmp_path):
    "The CLIP configuration round-trips too; the frozen MiniLM is never part of the saved weights."
    from medbook.models.brgsa import BrgSAModel
    torch.manual_seed(0); m = BrgSAModel(dim=16, channels=(4, 8), use_bank=False).eval()
    assert not any(k.startswith('encoder.text') for k in m.state_dict())
    m.save_pretrained(tmp_path/'c'); back = BrgSAModel.from_pretrained(tmp_path/'c')
    assert back.bank is None and back.state_dict().keys() == m.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), back.state_dict().values()))
    v = m.embed(torch.randn(2, 1, 16, 16, 16), ['a', 'b'])['v']
    assert torch.equal(back.scores(v, ['There is emphysema.']), m.scores(v, ['There is emphysema.']))
