"""Run by test_train.py under `torchrun --nproc_per_node 2`: a few `fit` steps per rank, then save each rank's weights.

Each rank starts from a *different* random initialisation on purpose: DistributedDataParallel must broadcast rank 0's
weights, and gradient averaging must keep the ranks identical.
"""
import json, sys
from pathlib import Path
import torch
from medbook.core import atomic_save_safetensors, dist_info
from medbook.train import TrainConfig, fit

out = Path(sys.argv[1]); rank, world, _ = dist_info()
torch.manual_seed(100 + rank)
model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Dropout(0.2), torch.nn.GELU(), torch.nn.Linear(16, 1))
init = {k: v.clone() for k, v in model.state_dict().items()}
g = torch.Generator().manual_seed(0)
X = torch.randn(64, 6, generator=g); y = X.sum(1, keepdim=True)
h = fit(model, lambda m, b, g: torch.nn.functional.mse_loss(m(b['x']), b['y']), {'x': X, 'y': y},
        TrainConfig(steps=5, batch_size=4, lr=1e-2, weight_decay=0.01), desc='ddp')
moved = max((a - b).abs().max().item() for a, b in zip(init.values(), model.state_dict().values()))
atomic_save_safetensors(model.state_dict(), out/f'rank{rank}.safetensors')
(out/f'rank{rank}.json').write_text(json.dumps(dict(world=world, world_seen=h['world_size'], loss=h['loss'], moved=moved)))
torch.distributed.destroy_process_group()
