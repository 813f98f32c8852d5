"""medbook.downstream: UNETR3D against MONAI's UNETR, grounding patch masks, zero-shot scoring, label subsets, fine-tuning through `fit`,
the experiment's config, bad input. (Save / load round trips: tests/test_downstream_models.py.)"""
import dataclasses
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from medbook.core import DataError, ConfigError
from medbook.models.mae import ViT3D, ViT3DConfig
from medbook.train import TrainConfig
from medbook.downstream import (UNETR3D, UNETR3DConfig, unetr_strides, default_skip_layers, lesion_patch_mask, grounding_targets, grounding_accuracy,
                                pad_sentences, zero_shot_prompts, zero_shot_scores, zero_shot_auc, label_subsets, labels_with_both,
                                probe_auc, check_arrays, dice_score, finetune_classifier, auc_per_label, macro_over, batch_schedule,
                                predict, train_segmentation, FINETUNE, SEGMENTATION, DownstreamConfig, DOWNSTREAM_CONFIGS)


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# --- UNETR ---------------------------------------------------------------------------------------------------------
def test_unetr_matches_monai_shape_params_and_logits():
    from monai.networks.nets import UNETR
    torch.manual_seed(0)
    ref = UNETR(1, 2, (32, 32, 32), feature_size=4, hidden_size=24, mlp_dim=96, num_heads=2, qkv_bias=True).eval()
    ours = UNETR3D.from_encoder(ViT3D(ViT3DConfig(img_size=(32, 32, 32), patch_size=(16, 16, 16), hidden_size=24, num_layers=12, num_heads=2)),
                                out_channels=2, feature_size=4).eval()
    unused = sum(p.numel() for n, p in ref.named_parameters() if 'norm_cross_attn' in n)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) - unused
    sd = {k.replace('vit.patch_embedding.', 'encoder.patch_embed.').replace('vit.', 'encoder.'): v
          for k, v in ref.state_dict().items() if 'norm_cross_attn' not in k}
    ours.load_state_dict(sd)
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad(): a, b = ours(x), ref(x)
    assert a.shape == b.shape == (1, 2, 32, 32, 32)
    assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize('levels', [4, 3, 2])
def test_unetr_anisotropic_shapes(levels):
    vit = ViT3D(ViT3DConfig(img_size=(16, 32, 32), patch_size=(8, 16, 16), hidden_size=12, num_layers=4, num_heads=2))
    net = UNETR3D.from_encoder(vit, out_channels=3, feature_size=4, levels=levels)
    y = net(torch.randn(2, 1, 16, 32, 32))
    assert y.shape == (2, 3, 16, 32, 32)
    y.mean().backward()
    assert vit.patch_embed.patch_embeddings.weight.grad is not None     # the encoder is trained with the decoder


def test_unetr_config_errors():
    assert unetr_strides((8, 16, 16))[-1] == (1, 2, 2)
    with pytest.raises(ConfigError, match='patch sides of 8 or 16'): unetr_strides((4, 16, 16))
    assert default_skip_layers(12) == (3, 6, 9) and default_skip_layers(4) == (0, 1, 2)
    vit = ViT3D(ViT3DConfig(img_size=(16, 32, 32), patch_size=(8, 16, 16), hidden_size=12, num_layers=4, num_heads=2))
    with pytest.raises(ConfigError, match='levels'): UNETR3D.from_encoder(vit, levels=5)
    with pytest.raises(ConfigError, match='skip_layers'): UNETR3D.from_encoder(vit, skip_layers=(0, 1, 7))
    with pytest.raises(ConfigError, match='does not match the config'): UNETR3D(UNETR3DConfig(dict(num_layers=2, hidden_size=12, num_heads=2)), vit)
    frozen = UNETR3D.from_encoder(vit, freeze_encoder=True)
    assert not any(p.requires_grad for p in frozen.encoder.parameters())


# --- grounding -------------------------------------------------------------------------------------------------------
def _lesion_map():
    m = torch.zeros(1, 16, 32, 32, dtype=torch.uint8)
    m[0, 0, 0, 0] = 1                       # one voxel in patch (0, 0, 0) -> index 0
    m[0, 10:12, 20:22, 3:5] = 2             # patch (1, 1, 0) -> index 1*4 + 1*2 + 0 = 6
    m[0, 7:9, 15:17, 15:17] = 3             # straddles all 8 patches
    return m


def test_lesion_patch_mask_raster_order_and_max_pool():
    m = _lesion_map()
    assert lesion_patch_mask(m, [1], (8, 16, 16)).nonzero().flatten().tolist() == [0]
    assert lesion_patch_mask(m, [2], (8, 16, 16)).nonzero().flatten().tolist() == [6]
    assert lesion_patch_mask(m, [3], (8, 16, 16)).all()
    assert lesion_patch_mask(m, [1, 2], (8, 16, 16)).sum() == 2
    assert not lesion_patch_mask(m, [9], (8, 16, 16)).any()
    # the order agrees with the ViT's tokens: a patch embedding that reads one voxel of each patch sees the lesion at the same index
    tokens = F.avg_pool3d((m == 2).float()[None], (8, 16, 16)).flatten()
    assert tokens.nonzero().flatten().tolist() == [6]


def test_grounding_targets_and_accuracy():
    m = _lesion_map()[None]
    g = [[dict(text='a', field='findings', lesion_ids=[1]), dict(text='b', field='findings', lesion_ids=[2]),
          dict(text='normal', field='findings', lesion_ids=[]), dict(text='imp', field='impression', lesion_ids=[2])]]
    idx, texts, masks = grounding_targets(g, m, (8, 16, 16))
    assert idx == [0] and texts == [['a', 'b']] and masks[0].shape == (2, 8)

    class Fake(nn.Module):
        def __init__(self): super().__init__(); self.p = nn.Parameter(torch.zeros(1))
        def sentence_patch_similarity(self, volumes, sentences):
            return [torch.stack([F.one_hot(torch.tensor({'a': 0, 'b': 5}[s]), 8).float() for s in ss]) for ss in sentences]
    r = grounding_accuracy(Fake(), dict(volumes=torch.zeros(1, 1, 16, 32, 32), lesions=m, grounding=g), (8, 16, 16))
    assert r['hits'] == [True, False] and r['acc'] == 0.5 and r['n'] == 2
    assert abs(r['chance'] - 1 / 8) < 1e-6
    with pytest.raises(DataError, match='absent from its lesion map'):
        grounding_targets([[dict(text='x', field='findings', lesion_ids=[7])]], m, (8, 16, 16))


def test_pad_sentences():
    s, mask = pad_sentences([torch.ones(2, 4), torch.ones(1, 4)])
    assert s.shape == (2, 2, 4) and mask.tolist() == [[True, True], [True, False]]
    with pytest.raises(DataError, match='every entry'): pad_sentences([torch.ones(2, 4), torch.ones(1, 3)])


# --- zero-shot ---------------------------------------------------------------------------------------------------------
class Planted(nn.Module):
    "Image embedding of volume i = the row of `emb`; text: 'There is X.' -> +u_X, 'There is no X.' -> -u_X."
    def __init__(self, labels, names, d=16, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.U = F.normalize(torch.randn(len(names), d, generator=g), dim=-1)
        self.names = [n.lower() for n in names]
        y = torch.as_tensor(labels, dtype=torch.float32)
        self.emb = F.normalize((2 * y - 1) @ self.U + 0.2 * torch.randn(len(y), d, generator=g), dim=-1)
        self.p = nn.Parameter(torch.zeros(1))
    def embed_image(self, volumes): return self.emb[volumes[:, 0, 0, 0, 0].long()]   # each volume carries its index
    def embed_text(self, texts):
        out = []
        for t in texts:
            neg = t.startswith('There is no ')
            out.append(self.U[self.names.index(t[len('There is no ' if neg else 'There is '):-1])] * (-1 if neg else 1))
        return torch.stack(out)


def test_zero_shot_planted_embeddings_score_perfectly():
    names = ['Lung nodule', 'Emphysema', 'Cardiomegaly']
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (30, 3)); y[:, 2] = 0                      # cardiomegaly: a single class, not scored
    vols = torch.arange(30, dtype=torch.float32)[:, None, None, None, None].expand(30, 1, 2, 2, 2).clone()
    r = zero_shot_auc(Planted(y, names), dict(volumes=vols, labels=y), names, batch_size=7)
    assert r['per_label'] == {'Lung nodule': 1.0, 'Emphysema': 1.0} and r['macro'] == 1.0
    assert r["scores"].shape == (30, 3) and ((r["scores"] >= 0) & (r["scores"] <= 1)).all()


def test_zero_shot_scores_softmax_and_prompts():
    pos, neg = zero_shot_prompts(['Lung nodule'])
    assert pos == ['There is lung nodule.'] and neg == ['There is no lung nodule.']
    img, u = torch.tensor([[1., 0.], [0., 1.]]), torch.tensor([[1., 0.]])
    p = zero_shot_scores(img, u, -u, logit_scale=1.0)
    assert torch.allclose(p[:, 0], torch.tensor([torch.sigmoid(torch.tensor(2.)).item(), 0.5]))
    with pytest.raises(DataError, match='embeddings do not fit'): zero_shot_scores(img, u, torch.ones(2, 2))


# --- label subsets and probes ---------------------------------------------------------------------------------------
def test_label_subsets_have_positives_and_are_nested():
    y = np.zeros((320, 18), int); y[::40, 9] = 1; y[::97, 2] = 1      # 8 nodules, 4 cardiomegalies
    for seed in range(5):
        subs = label_subsets(y, (0.01, 0.1, 1.0), seed)
        assert [len(v) for v in subs.values()] == [3, 32, 320]
        assert labels_with_both(y[subs[0.01]])                        # a positive and a negative in the 3 volumes
        assert set(subs[0.01]) <= set(subs[0.1]) <= set(subs[1.0])
    assert np.array_equal(label_subsets(y, seed=3)[0.1], label_subsets(y, seed=3)[0.1])
    with pytest.raises(DataError, match='no label has both classes'): label_subsets(np.ones((10, 3), int))
    with pytest.raises(ConfigError, match='fraction'): label_subsets(y, (0.0, 1.0))


def test_probe_counts_untrainable_labels_as_chance():
    rng = np.random.default_rng(1)
    yt, yv = rng.integers(0, 2, (60, 2)), rng.integers(0, 2, (40, 2))
    ft, fv = rng.normal(size=(60, 4)) + 4 * yt[:, :1], rng.normal(size=(40, 4)) + 4 * yv[:, :1]
    few = np.r_[np.flatnonzero((yt[:, 0] == 1) & (yt[:, 1] == 0))[:2], np.flatnonzero((yt[:, 0] == 0) & (yt[:, 1] == 0))[:2]]
    r = probe_auc(ft, yt, fv, yv, {1.0: np.arange(60), 0.05: few}, names=['a', 'b'])
    assert r[0.05]['labels_trained'] == 1 and 'b' not in r[0.05]['per_label']
    assert r[0.05]['macro'] == pytest.approx((r[0.05]['per_label']['a'] + 0.5) / 2)
    assert macro_over({}, ['a']) == 0.5


# --- bad input -------------------------------------------------------------------------------------------------------
def test_mismatched_inputs_raise_data_error():
    vols = torch.zeros(4, 1, 16, 32, 32)
    with pytest.raises(DataError, match='labels has 3 rows but volumes has 4'): check_arrays(dict(volumes=vols, labels=np.zeros((3, 2))))
    with pytest.raises(DataError, match='lacks labels'): check_arrays(dict(volumes=vols))
    with pytest.raises(DataError, match='do not match the volumes'):
        check_arrays(dict(volumes=vols, lesions=torch.zeros(4, 1, 8, 32, 32)), ('volumes', 'lesions'))
    with pytest.raises(DataError, match='no volumes'): check_arrays(dict(volumes=vols[:0], labels=np.zeros((0, 2))))
    vit = ViT3D(ViT3DConfig(img_size=(16, 32, 32), patch_size=(8, 16, 16), hidden_size=12, num_layers=1, num_heads=2))
    with pytest.raises(DataError, match='4 volumes but 2 label rows'): finetune_classifier(vit, vols, np.zeros((2, 3)))
    with pytest.raises(DataError, match='4 volumes but 3 lesion maps'): dice_score(UNETR3D.from_encoder(vit, levels=2), vols, torch.zeros(3, 1, 16, 32, 32))
    with pytest.raises(DataError, match='no training volume has a lesion'): train_segmentation(vit, vols, torch.zeros(4, 1, 16, 32, 32, dtype=torch.uint8))
    with pytest.raises(DataError, match='do not fit together'): auc_per_label(np.zeros((4, 2)), np.zeros((4, 3)), ['a', 'b'])
    with pytest.raises(DataError, match='not a multiple of the patch'): lesion_patch_mask(torch.zeros(15, 32, 32), [1], (8, 16, 16))
    with pytest.raises(DataError, match='2 grounding records but 1 lesion maps'):
        grounding_targets([[], []], torch.zeros(1, 1, 16, 32, 32), (8, 16, 16))


# --- training through `fit` ------------------------------------------------------------------------------------------
def test_batch_schedule_is_one_generator_carried_across_steps():
    pool = torch.tensor([2, 4, 6, 8, 10])
    g = torch.Generator().manual_seed(7)
    ref = [pool[torch.randint(5, (3,), generator=g)] for _ in range(6)]
    got = batch_schedule(pool, 6, 3, 7)
    assert len(got) == 6 and all(torch.equal(a, b) for a, b in zip(ref, got))


def _toy(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.randn(n, 1, 16, 32, 32, generator=g); y = torch.zeros(n, 2, dtype=torch.long); y[::2, 0] = 1; y[::3, 1] = 1
    x[y[:, 0] == 1, :, 4:10, 8:16, 8:16] += 1.5
    return x, y.numpy()


def test_finetune_keeps_the_best_held_out_state():
    vit = ViT3D(ViT3DConfig(img_size=(16, 32, 32), patch_size=(8, 16, 16), hidden_size=12, num_layers=1, num_heads=2))
    x, y = _toy(40)
    cfg = dataclasses.replace(FINETUNE, steps=9, batch_size=4, lr=1e-2, warmup=1, eval_every=2, seed=1)
    model, h = finetune_classifier(vit, x, y, cfg=cfg, encoder_lr=1e-3)
    assert h['n_holdout'] == 8 and h['n_fit'] == 32 and len(h['loss']) == 9
    assert h['holdout_step'] == [2, 4, 6, 8, 9]                                   # every eval_every steps and at the last one
    assert h['best_step'] == h['holdout_step'][int(np.argmin(h['holdout_bce']))]   # strict improvement: the first minimum
    hold = np.random.default_rng([1, 11]).permutation(40)[:8]
    bce = F.binary_cross_entropy_with_logits(predict(model, x[hold]), torch.as_tensor(y[hold], dtype=torch.float32))
    assert float(bce) == pytest.approx(min(h['holdout_bce']), abs=1e-6)            # the model returned is the best one
    again, h2 = finetune_classifier(vit, x, y, cfg=cfg, encoder_lr=1e-3)
    assert h2 == h and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_finetune_without_holdout_keeps_the_last_state():
    vit = ViT3D(ViT3DConfig(img_size=(16, 32, 32), patch_size=(8, 16, 16), hidden_size=12, num_layers=1, num_heads=2))
    x, y = _toy(10)
    _, h = finetune_classifier(vit, x, y, cfg=dataclasses.replace(FINETUNE, steps=3, batch_size=4, warmup=1))
    assert h['n_holdout'] == 0 and h['holdout_bce'] == [] and h['best_step'] == 3


def test_train_segmentation_runs_and_is_deterministic():
    vit = ViT3D(ViT3DConfig(img_size=(16, 32, 32), patch_size=(8, 16, 16), hidden_size=12, num_layers=1, num_heads=2))
    x, _ = _toy(8); lesions = (x > 0.8).to(torch.uint8)
    cfg = dataclasses.replace(SEGMENTATION, steps=3, batch_size=2, warmup=1, seed=2)
    net, losses = train_segmentation(vit, x, lesions, cfg, feature_size=4, levels=2)
    _, again = train_segmentation(vit, x, lesions, cfg, feature_size=4, levels=2)
    assert len(losses) == 3 and losses == again and not net.training


# --- the experiment's config -----------------------------------------------------------------------------------------
def test_downstream_configs_are_frozen_and_checked():
    small = DOWNSTREAM_CONFIGS['small']
    assert isinstance(small.finetune, TrainConfig) and small.finetune.weight_decay == 0.05 and small.seg.weight_decay == 0.01
    with pytest.raises(dataclasses.FrozenInstanceError): small.seeds = 5
    assert dataclasses.replace(small, fractions=[0.5, 1.0]).fractions == (0.5, 1.0)
    for bad, msg in ((dict(seeds=0), 'seeds must be >= 1'), (dict(fractions=()), 'fractions must be fractions'),
                     (dict(finetune_fractions=(1.5,)), 'finetune_fractions must be fractions'), (dict(levels=1), 'levels must be 2, 3 or 4'),
                     (dict(probe_C=0), 'probe_C must be > 0'), (dict(finetune={'steps': 3}), 'finetune must be a TrainConfig')):
        with pytest.raises(ConfigError, match=msg): dataclasses.replace(small, **bad)
