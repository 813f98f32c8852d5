"Kill a training process with SIGKILL mid-run, resume it, and get the uninterrupted run's weights bit for bit."
import os, signal, subprocess, sys, time
from pathlib import Path
import torch
from safetensors.torch import load_file

SCRIPT = Path(__file__).with_name('_train_script.py')
N = 40

def _run(*args, **kw): return subprocess.Popen([sys.executable, str(SCRIPT), *map(str, args)], **kw)

def test_sigkill_then_resume(tmp_path):
    ref = tmp_path/'ref.safetensors'
    assert _run('-', ref, N, 0).wait() == 0
    ckpt, out = tmp_path/'ckpt', tmp_path/'out.safetensors'
    p = _run(ckpt, out, N, 0.05)
    deadline = time.time() + 120
    while time.time() < deadline and not any(int(f.name[5:13]) >= 8 for f in ckpt.glob('ckpt-*.safetensors')):
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL); p.wait()
    assert not out.exists(), 'the run finished before it could be interrupted'
    steps = sorted(int(f.name[5:13]) for f in ckpt.glob('ckpt-*.safetensors'))
    assert steps and steps[-1] < N
    assert _run(ckpt, out, N, 0).wait() == 0
    a, b = load_file(ref), load_file(out)
    assert a.keys() == b.keys()
    for k in a: assert torch.equal(a[k], b[k]), k

def test_torn_temp_file_is_ignored(tmp_path):
    "A half-written temporary file (the kill hit during a save) is not mistaken for a checkpoint."
    from medbook.core import latest_checkpoint
    ckpt = tmp_path/'c'; ckpt.mkdir()
    (ckpt/'.ckpt-00000009.safetensors.tmp-1-abc').write_bytes(b'\x00' * 10)
    assert latest_checkpoint(ckpt) is None
