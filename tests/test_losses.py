"""Checks of medbook.losses outside the notebook: the CLIP loss against a float64 reference and MONAI's NT-Xent
(the MONAI import is too slow for the notebook's default pass), shapes, masks and the pointing game."""
import math
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from medbook.losses import (clip_loss, clip_logits, InfoNCE, LogitScale, sparsemax, sentence_patch_alignment,
                            word_patch_alignment, pointing_game, centroid_distance, modality_classifier_accuracy, SELECTIONS)


def _ref(img, txt, scale, eps=0.):
    a = img.double().numpy(); b = txt.double().numpy()
    a = a / np.linalg.norm(a, axis=1, keepdims=True); b = b / np.linalg.norm(b, axis=1, keepdims=True)
    L = scale * a @ b.T; n = len(L); q = (1 - eps) * np.eye(n) + eps / n
    def ce(L):
        m = L.max(1, keepdims=True); lp = L - m - np.log(np.exp(L - m).sum(1, keepdims=True))
        return -(q * lp).sum(1).mean()
    return (ce(L) + ce(L.T)) / 2


@pytest.mark.parametrize('eps', [0., 0.2])
@pytest.mark.parametrize('n,d', [(2, 3), (7, 16), (33, 64)])
def test_clip_loss_float64_reference(n, d, eps):
    g = torch.Generator().manual_seed(n * d)
    img, txt = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64)
    assert float(clip_loss(img, txt, 1 / 0.07, eps)) == pytest.approx(_ref(img, txt, 1 / 0.07, eps), abs=1e-12)
    assert float(clip_loss(img.float(), txt.float(), 1 / 0.07, eps)) == pytest.approx(_ref(img, txt, 1 / 0.07, eps), abs=1e-4)


def test_nt_xent_matches_monai_and_differs_from_clip():
    from monai.losses import ContrastiveLoss
    torch.manual_seed(0)
    a, b = torch.randn(6, 16), torch.randn(6, 16)
    z = torch.cat([a, b]); L = clip_logits(z, z, 1 / 0.5).fill_diagonal_(float('-inf'))
    ours = F.cross_entropy(L, torch.arange(12).roll(6))
    assert float(ours) == pytest.approx(float(ContrastiveLoss(temperature=0.5)(a, b)), abs=1e-5)
    assert abs(float(ours) - float(clip_loss(a, b, 2.))) > 0.1


def test_learnable_temperature_is_clamped_and_trained():
    crit = InfoNCE(init_temperature=0.07)
    opt = torch.optim.Adam(crit.parameters(), lr=0.5)
    e = torch.eye(4)
    for _ in range(50):
        loss = crit(e, e); opt.zero_grad(); loss.backward(); opt.step()
    assert crit.logit_scale.temperature == pytest.approx(0.01, rel=1e-5)   # pushed to the clamp, not past it
    assert LogitScale(0.1, learnable=False).log_scale.requires_grad is False


def test_sparsemax_simplex_and_sparsity():
    z = torch.randn(50, 9, dtype=torch.float64) * 3
    p = sparsemax(z)
    assert torch.allclose(p.sum(-1), torch.ones(50, dtype=torch.float64)) and (p >= 0).all()
    assert (p == 0).any()
    assert torch.equal(sparsemax(z + 5.), p) or torch.allclose(sparsemax(z + 5.), p)    # shift invariant


@pytest.mark.parametrize('select', SELECTIONS)
def test_sentence_patch_alignment_masks_and_selection(select):
    torch.manual_seed(0)
    P, S = torch.randn(4, 20, 8), torch.randn(4, 3, 8)
    M = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 1, 0]]).bool()
    a = sentence_patch_alignment(P, S, M, select=select, k=5)
    S2 = S.clone(); S2[~M] = 1e3
    assert float(sentence_patch_alignment(P, S2, M, select=select, k=5).loss) == pytest.approx(float(a.loss), abs=1e-6)
    assert a.scores.shape == (4, 3, 4) and a.logits.shape == (4, 4) and a.weights.shape == (4, 3, 20)
    assert torch.allclose(a.weights.sum(-1), torch.ones(4, 3), atol=1e-5)
    if select == 'topk': assert a.indices.shape == (4, 3, 5)


def test_topk_indices_are_the_top_similarities():
    torch.manual_seed(0)
    P, S = torch.randn(3, 16, 8), torch.randn(3, 2, 8)
    a = sentence_patch_alignment(P, S, k=3)
    sim = torch.einsum('bsd,bnd->bsn', F.normalize(S, dim=-1), F.normalize(P, dim=-1))
    assert torch.equal(a.indices, sim.topk(3, -1).indices)
    assert pointing_game(a.indices, F.one_hot(sim.argmax(-1), 16).bool()) == 1.0


@pytest.mark.parametrize('bad,msg', [
    (lambda: sentence_patch_alignment(torch.randn(3, 10, 8), torch.randn(3, 4, 6)), 'sents must be (B=3, S, d=8)'),
    (lambda: sentence_patch_alignment(torch.randn(3, 10, 8), torch.randn(3, 4, 8), torch.ones(4, 3)), 'sent_mask must be (B, S) = (3, 4)'),
    (lambda: word_patch_alignment(torch.randn(3, 10), torch.randn(3, 4, 10)), 'patches must have 3 dimensions'),
    (lambda: clip_loss(torch.randn(3, 8), torch.randn(3, 8) * float('nan')), 'contains NaN'),
    (lambda: pointing_game(torch.zeros(2, 3, 5), torch.zeros(2, 3, 4, dtype=torch.bool)), 'must have N=4 patches'),
    (lambda: centroid_distance(torch.randn(5, 3), torch.randn(5, 4)), 'same embedding size'),
])
def test_shape_errors_name_the_shape(bad, msg):
    with pytest.raises(ValueError, match=None) as e: bad()
    assert msg in str(e.value)


def test_modality_gap_metrics():
    torch.manual_seed(0)
    z = torch.randn(300, 8)
    a, b = z + 0.2 * torch.randn(300, 8), z + 0.2 * torch.randn(300, 8)
    assert centroid_distance(a, b) < 0.1 and modality_classifier_accuracy(a, b) < 0.7
    shift = 5 * F.normalize(torch.randn(8), dim=0)
    assert centroid_distance(a + shift, b) > 0.5 and modality_classifier_accuracy(a + shift, b) > 0.9


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_losses_on_gpu_match_cpu():
    torch.manual_seed(0)
    P, S = torch.randn(4, 64, 16), torch.randn(4, 3, 16)
    M = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 1, 0]]).bool()
    for sel in SELECTIONS:
        cpu = sentence_patch_alignment(P, S, M, select=sel, k=4)
        gpu = sentence_patch_alignment(P.cuda(), S.cuda(), M.cuda(), select=sel, k=4, logit_scale=LogitScale().cuda())
        assert float(gpu.loss) == pytest.approx(float(cpu.loss), abs=1e-4)
    assert float(word_patch_alignment(P.cuda(), S.cuda(), M.cuda()).loss) == pytest.approx(float(word_patch_alignment(P, S, M).loss), abs=1e-4)
    assert float(clip_loss(P[:, 0].cuda(), S[:, 0].cuda())) == pytest.approx(float(clip_loss(P[:, 0], S[:, 0])), abs=1e-4)


def test_planted_config_validates_and_makes_variants():
    from dataclasses import replace
    from medbook.core import ConfigError
    from medbook.losses import PlantedConfig, PLANTED_CONFIGS, PLANTED_TRAIN
    assert set(PLANTED_CONFIGS) == {'tiny', 'small', 'full'}
    assert PLANTED_TRAIN.weight_decay == 0 and PLANTED_TRAIN.grad_clip is None and PLANTED_TRAIN.schedule == 'constant'
    assert replace(PLANTED_CONFIGS['small'], n_patches=[32]).n_patches == (32,)
    with pytest.raises(ConfigError, match='PlantedConfig: k must be >= 1'): PlantedConfig(k=0)
    with pytest.raises(ConfigError, match='n_eval must be >= 2'): PlantedConfig(n_eval=1)
    with pytest.raises(ConfigError, match='each >= k=4'): PlantedConfig(n_patches=(64, 3))


def test_train_planted_is_deterministic_and_resumable_by_step():
    "Each step's batch is a pure function of the step: two runs agree exactly, and the loss history has one entry a step."
    from dataclasses import replace
    from medbook.losses import train_planted, PlantedConfig, PLANTED_TRAIN
    cfg = PlantedConfig(replace(PLANTED_TRAIN, steps=5), n_eval=16)
    a, b = train_planted('topk', cfg, seed=2, n_patches=16), train_planted('topk', cfg, seed=2, n_patches=16)
    assert a['losses'] == b['losses'] and len(a['losses']) == 5 and a['pointing_after'] == b['pointing_after']
    assert all(math.isfinite(x) for x in a['losses'])
