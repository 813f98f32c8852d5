"""Benchmarks of the foundation (pytest-benchmark; compare within a group, never assert a time).

group `checkpoint`: medbook's atomic safetensors training state vs `torch.save` of the same state (the pickle-based
reference medbook avoids). Read the ratio of the two means in pytest-benchmark's table.
"""
import torch, pytest
from medbook.core import save_checkpoint, load_checkpoint

def _state():
    torch.manual_seed(0)
    m = torch.nn.Sequential(*[torch.nn.Linear(512, 512) for _ in range(8)])   # ~2.1 M parameters
    opt = torch.optim.AdamW(m.parameters())
    m(torch.randn(4, 512)).sum().backward(); opt.step()
    return m, opt

@pytest.mark.benchmark(group='checkpoint-save')
def test_bench_save_checkpoint(benchmark, tmp_path):
    m, opt = _state()
    benchmark.pedantic(lambda: save_checkpoint(tmp_path/'ckpt-00000001.safetensors', m, opt, step=1), rounds=5, iterations=1)

@pytest.mark.benchmark(group='checkpoint-save')
def test_bench_torch_save_reference(benchmark, tmp_path):
    m, opt = _state()
    benchmark.pedantic(lambda: torch.save({'model': m.state_dict(), 'optim': opt.state_dict()}, tmp_path/'ref.pt'), rounds=5, iterations=1)

@pytest.mark.benchmark(group='checkpoint-load')
def test_bench_load_checkpoint(benchmark, tmp_path):
    m, opt = _state()
    p = save_checkpoint(tmp_path/'ckpt-00000001.safetensors', m, opt, step=1)
    benchmark.pedantic(lambda: load_checkpoint(p, m, opt), rounds=5, iterations=1)

@pytest.mark.benchmark(group='checkpoint-load')
def test_bench_torch_load_reference(benchmark, tmp_path):
    m, opt = _state()
    torch.save({'model': m.state_dict(), 'optim': opt.state_dict()}, tmp_path/'ref.pt')
    def load():
        sd = torch.load(tmp_path/'ref.pt', weights_only=True)
        m.load_state_dict(sd['model']); opt.load_state_dict(sd['optim'])
    benchmark.pedantic(load, rounds=5, iterations=1)
