"GPU paths of the foundation. Skipped where there is no CUDA device (CI); run on a GPU machine with `pytest tests/test_gpu.py`."
import os, tempfile
from pathlib import Path
import pytest, torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')

def _run(ckpt_dir, n_steps=24, stop_after=None, bf16=False):
    from medbook.core import get_device
    from medbook.train import TrainConfig, fit
    dev = get_device()
    torch.manual_seed(0); torch.cuda.manual_seed_all(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.Dropout(0.2), torch.nn.GELU(), torch.nn.Linear(256, 8)).to(dev)
    X, y = torch.randn(512, 64, device=dev), torch.randint(0, 8, (512,), device=dev)
    def loss_fn(model, idx, g):   # dropout draws from the CUDA generator, which the checkpoint restores
        return torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
    cfg = TrainConfig(steps=n_steps, batch_size=32, lr=1e-3, ckpt_every=5, precision='bf16' if bf16 else 'fp32')
    h = fit(model, loss_fn, torch.arange(512), cfg, ckpt_dir, stop_after=stop_after)
    return model, h['loss']

@pytest.fixture(autouse=True)
def deterministic():
    os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)

@pytest.mark.parametrize('bf16', [False, True])
def test_exact_resume_on_gpu(tmp_path, bf16):
    ref, ref_l = _run(None, bf16=bf16)
    _run(tmp_path, stop_after=11, bf16=bf16)
    res, res_l = _run(tmp_path, bf16=bf16)
    assert ref_l == res_l
    for a, b in zip(ref.state_dict().values(), res.state_dict().values()): assert torch.equal(a, b)
    assert next(res.parameters()).dtype == torch.float32   # autocast leaves the master weights in fp32

def test_cuda_rng_round_trip(tmp_path):
    from medbook.core import save_checkpoint, load_checkpoint, get_device
    assert get_device().type == 'cuda'
    m = torch.nn.Linear(4, 4).cuda()
    p = save_checkpoint(tmp_path/'ckpt-00000001.safetensors', m, step=1)
    want = torch.rand(5, device='cuda')
    torch.rand(100, device='cuda')
    load_checkpoint(p, m, map_location='cuda')
    assert torch.equal(torch.rand(5, device='cuda'), want)
    assert next(m.parameters()).is_cuda
