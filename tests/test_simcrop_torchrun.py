"`pretrain_simcrop` runs unchanged under `torchrun --nproc_per_node 2` (gloo): both ranks end with identical weights."
import torch
from _torchrun import run_two_ranks

def test_two_ranks_hold_identical_weights(tmp_path):
    (r0, r1), (a, b) = run_two_ranks('_simcrop_ddp_script.py', tmp_path)
    assert a.keys() == b.keys() and any(k.startswith('text.') for k in a) and any(k.startswith('fusion.') for k in a)
    # every parameter is identical; BatchNorm running statistics are rank-local (DDP broadcasts rank 0's before each
    # forward, then each rank updates them from its own batch; rank 0's are the ones checkpointed and saved)
    for k in a:
        if '.running_' in k: assert torch.isfinite(a[k]).all() and torch.isfinite(b[k]).all(), k
        else: assert torch.equal(a[k], b[k]), f'{k} differs between the ranks'
    assert r0['world'] == r1['world'] == 2 and r0['world_seen'] == 2
    assert r0['terms'] == ['mae', 'mlm', 'clip', 'sent', 'word', 'fusion']
    assert r0['loss'] != r1['loss']                        # each rank drew its own batches
    assert len(r0['fusion']) == 3 and r0['moved'] > 0      # every term was recorded, and the weights were trained
