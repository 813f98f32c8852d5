"`pretrain_simcrop` runs unchanged under `torchrun --nproc_per_node 2` (gloo): both ranks end with identical weights."
import json, os, shutil, socket, subprocess, sys
from pathlib import Path
import torch
from safetensors.torch import load_file

def _free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def test_two_ranks_hold_identical_weights(tmp_path):
    torchrun = shutil.which('torchrun') or str(Path(sys.executable).parent/'torchrun')
    script = Path(__file__).parent/'_simcrop_ddp_script.py'
    env = {**os.environ, 'MEDBOOK_PROGRESS': '0', 'OMP_NUM_THREADS': '1'}
    cmd = [torchrun, '--nproc_per_node', '2', '--master_addr', '127.0.0.1', '--master_port', str(_free_port()), str(script), str(tmp_path)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    a, b = load_file(str(tmp_path/'rank0.safetensors')), load_file(str(tmp_path/'rank1.safetensors'))
    assert a.keys() == b.keys() and any(k.startswith('text.') for k in a) and any(k.startswith('fusion.') for k in a)
    # every parameter is identical; BatchNorm running statistics are rank-local (DDP broadcasts rank 0's before each
    # forward, then each rank updates them from its own batch; rank 0's are the ones checkpointed and saved)
    for k in a:
        if '.running_' in k: assert torch.isfinite(a[k]).all() and torch.isfinite(b[k]).all(), k
        else: assert torch.equal(a[k], b[k]), f'{k} differs between the ranks'
    r0, r1 = (json.loads((tmp_path/f'rank{r}.json').read_text()) for r in (0, 1))
    assert r0['world'] == r1['world'] == 2 and r0['world_seen'] == 2
    assert r0['terms'] == ['mae', 'mlm', 'clip', 'sent', 'word', 'fusion']
    assert r0['loss'] != r1['loss']                        # each rank drew its own batches
    assert len(r0['fusion']) == 3 and r0['moved'] > 0      # every term was recorded, and the weights were trained
