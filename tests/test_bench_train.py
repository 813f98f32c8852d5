"""Benchmarks: bfloat16 autocast on the CPU, and how close a training step comes to the machine's matmul peak.

- group `matmul-peak`: a 2048 x 2048 x 2048 matrix product in float32 and in bfloat16 (`extra_info['gflops']`: 2 n^3 /
  mean time), the machine's practical peak for each precision, measured in the same run as the step below.
- group `mae-step-precision`: one MAE training step at `small` size (batch 8 x 1 x 48 x 96 x 96, the ViT of the `mae`
  experiment) as `medbook.train.fit` takes it -- forward and loss under autocast, backward, gradient clip, AdamW
  step -- in float32 and under bfloat16 autocast. `extra_info` has the step's FLOPs (counted by
  `torch.utils.flop_counter`) and its achieved GFLOP/s.
- `test_precision_summary` (runs last) writes the ratio of the two steps and each step's fraction of its matmul peak
  to `$MEDBOOK_HOME/bench/train-precision.json` and prints it (`pytest -s`).

Nothing is asserted about time: the numbers are reported, never compared with a threshold.
"""
import json, os
from pathlib import Path
import pytest, torch
from torch.utils.flop_counter import FlopCounterMode
from medbook.core import medbook_home
from medbook.models.mae import MAE3D, ViT3DConfig

SIZE, PATCH, B, N = (48, 96, 96), (8, 16, 16), 8, 2048
RESULTS: dict = {}

def _mae():
    torch.manual_seed(0)
    return MAE3D(ViT3DConfig(img_size=SIZE, patch_size=PATCH, hidden_size=192, num_layers=4, num_heads=6),
                 decoder_hidden=96, decoder_layers=2, decoder_heads=4)

def _step_fn(bf16: bool):
    m = _mae(); opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    x = torch.rand(B, 1, *SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    def step():
        g = torch.Generator().manual_seed(0)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): loss = m(x, generator=g)['loss']
        opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
        return loss
    return step

def _flops(step) -> int:
    with FlopCounterMode(display=False) as fc: step()
    return fc.get_total_flops()

@pytest.mark.benchmark(group='matmul-peak')
@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_bench_matmul(benchmark, dtype):
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(N, N, generator=g).to(getattr(torch, dtype)) for _ in range(2))
    benchmark.pedantic(lambda: a @ b, rounds=8, warmup_rounds=2, iterations=1)
    if benchmark.stats is None: return   # --benchmark-disable: ran once, nothing measured
    gf = 2 * N ** 3 / benchmark.stats.stats.mean / 1e9
    benchmark.extra_info['gflops'] = round(gf, 1); RESULTS[f'matmul_{dtype}_gflops'] = gf

@pytest.mark.benchmark(group='mae-step-precision')
@pytest.mark.parametrize('precision', ['fp32', 'bf16'])
def test_bench_mae_step(benchmark, precision):
    step = _step_fn(precision == 'bf16')
    flops = _flops(step)
    loss = benchmark.pedantic(step, rounds=5, warmup_rounds=1, iterations=1)
    assert torch.isfinite(loss)
    if benchmark.stats is None: return
    gf = flops / benchmark.stats.stats.mean / 1e9
    benchmark.extra_info.update(flops=flops, gflops=round(gf, 1))
    RESULTS[f'mae_step_{precision}_seconds'] = benchmark.stats.stats.mean; RESULTS[f'mae_step_{precision}_gflops'] = gf
    RESULTS['mae_step_flops'] = flops

def test_precision_summary():
    need = ['matmul_float32_gflops', 'matmul_bfloat16_gflops', 'mae_step_fp32_seconds', 'mae_step_bf16_seconds']
    if any(k not in RESULTS for k in need): pytest.skip('run with the benchmarks above (not --benchmark-disable / -k)')
    r = dict(RESULTS)
    r['step_speedup_bf16'] = r['mae_step_fp32_seconds'] / r['mae_step_bf16_seconds']
    r['fp32_step_fraction_of_fp32_matmul_peak'] = r['mae_step_fp32_gflops'] / r['matmul_float32_gflops']
    r['bf16_step_fraction_of_bf16_matmul_peak'] = r['mae_step_bf16_gflops'] / r['matmul_bfloat16_gflops']
    r['threads'] = torch.get_num_threads()
    out = Path(os.environ.get('MEDBOOK_BENCH_DIR') or medbook_home()/'bench')/'train-precision.json'
    out.parent.mkdir(parents=True, exist_ok=True); out.write_text(json.dumps(r, indent=1))
    print('\n' + json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}, indent=1))
