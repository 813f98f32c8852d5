"`pretrain` runs unchanged under `torchrun --nproc_per_node 2` (gloo): both ranks end with identical weights."
import torch
from _torchrun import run_two_ranks

def test_two_ranks_hold_identical_weights(tmp_path):
    (r0, r1), (a, b) = run_two_ranks('_mae_ddp_script.py', tmp_path)
    assert a.keys() == b.keys() and any(k.startswith('mm/') for k in a)
    for k in a: assert torch.equal(a[k], b[k]), f'{k} differs between the ranks'
    assert r0['world'] == r1['world'] == 2 and r0['world_seen'] == 2
    assert r0['mae_loss'] != r1['mae_loss'] and r0['mm_loss'] != r1['mm_loss']   # each rank drew its own batches
    assert r0['moved'] > 0                                                       # and the weights were trained
