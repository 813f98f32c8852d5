"""Benchmark: one MAE training step (forward + backward + AdamW step), medbook's `MAE3D` vs MONAI's `MaskedAutoEncoderViT`.

Same input (4 x 1 x 48 x 96 x 96), patch (8, 16, 16), widths, depths, heads, MLP sizes and q/k/v biases; the same loss
(MSE on the masked patches, normalised-pixel target) applied to both outputs. pytest-benchmark group `mae-train-step`:
read the ratio of the two means from its table (`python -m pytest tests/test_bench_mae.py --benchmark-only`).
No timed assert: the ratio is reported, not asserted. Parameter counts go to each benchmark's `extra_info`.
"""
import pytest, torch
from monai.networks.nets import MaskedAutoEncoderViT
from medbook.models.mae import MAE3D, ViT3DConfig, masked_mse, patch_targets

SIZE, PATCH, B = (48, 96, 96), (8, 16, 16), 4
ENC = dict(hidden_size=192, num_layers=4, num_heads=6)
DEC = dict(decoder_hidden=96, decoder_layers=2, decoder_heads=4)

def _ours():
    torch.manual_seed(0)
    m = MAE3D(ViT3DConfig(img_size=SIZE, patch_size=PATCH, **ENC), **DEC)
    def loss(x): return m(x)['loss']
    return m, loss

def _monai():
    torch.manual_seed(0)
    m = MaskedAutoEncoderViT(1, SIZE, PATCH, hidden_size=192, mlp_dim=768, num_layers=4, num_heads=6, decoder_hidden_size=96,
                             decoder_mlp_dim=384, decoder_num_layers=2, decoder_num_heads=4, qkv_bias=True)
    def loss(x):
        pred, mask = m(x)
        return masked_mse(pred, patch_targets(x, PATCH, norm_pix=True), mask.bool())
    return m, loss

def _bench(benchmark, build):
    m, loss = build()
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
    x = torch.rand(B, 1, *SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    def step():
        opt.zero_grad(set_to_none=True); l = loss(x); l.backward(); opt.step(); return l
    benchmark.extra_info['trainable_params'] = sum(p.numel() for p in m.parameters() if p.requires_grad)
    l = benchmark.pedantic(step, rounds=6, warmup_rounds=1, iterations=1)
    assert torch.isfinite(l)

@pytest.mark.benchmark(group='mae-train-step')
def test_bench_medbook_mae3d(benchmark): _bench(benchmark, _ours)

@pytest.mark.benchmark(group='mae-train-step')
def test_bench_monai_masked_autoencoder_vit(benchmark): _bench(benchmark, _monai)
