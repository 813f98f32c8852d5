"`medbook.train.fit` across real processes: two torchrun ranks stay identical; every model config round-trips."
import pytest, torch
from _torchrun import run_two_ranks

@pytest.mark.torchrun
def test_two_ranks_hold_identical_weights(tmp_path):
    (r0, r1), (a, b) = run_two_ranks('_train_ddp_script.py', tmp_path)
    for k in a: assert torch.equal(a[k], b[k]), f'{k} differs between the ranks'
    assert r0['world'] == r1['world'] == r0['world_seen'] == 2
    assert r0['loss'] != r1['loss']     # each rank drew its own batches
    assert r0['moved'] > 0

def test_bad_config_names_every_problem():
    from medbook.core import ConfigError
    from medbook.train import TrainConfig
    with pytest.raises(ConfigError, match='lr must be > 0.*schedule must be one of'):
        TrainConfig(lr=0, schedule='step')

def test_loss_fn_must_return_a_loss():
    from medbook.core import ConfigError
    from medbook.train import TrainConfig, fit
    with pytest.raises(ConfigError, match="dict with a 'loss'"):
        fit(torch.nn.Linear(2, 1), lambda m, b, g: {'mse': m(b).sum()}, torch.zeros(4, 2), TrainConfig(steps=1))
