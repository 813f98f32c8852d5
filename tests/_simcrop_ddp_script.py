"""Run by test_simcrop_torchrun.py under `torchrun --nproc_per_node 2`: a few `pretrain_simcrop` steps per rank, then save each rank's weights.

`python _simcrop_ddp_script.py OUT_DIR` (under torchrun). Each rank starts from a *different* random initialisation on purpose:
DistributedDataParallel must broadcast rank 0's weights, and gradient averaging must keep the ranks identical.
"""
import json, sys
from pathlib import Path
import torch
from medbook.core import atomic_save_safetensors, dist_info
from medbook.models.simcrop import SimCroP, simcrop_config, pretrain_simcrop
from medbook.train import TrainConfig

out = Path(sys.argv[1]); rank, world, _ = dist_info()
torch.manual_seed(100 + rank)                      # different init per rank
cfg = simcrop_config('tiny', 'SimCroP', encoder=dict(img_size=(16, 32, 32), hidden_size=24, num_layers=1, num_heads=4),
                     decoder=dict(decoder_hidden=24, decoder_layers=1, decoder_heads=4), embed_dim=24,
                     report=dict(hidden=24, layers=1, heads=4, max_len=48), k=1)
g = torch.Generator().manual_seed(0)                # the same data on every rank
vols = torch.rand(8, 1, 16, 32, 32, generator=g) * 2 - 1
reports = [f'There is a {i + 3}-mm nodule in the {lobe} lobe. No pleural effusion. {"Mild emphysema." if i % 2 else "The heart is normal in size."}'
           for i, lobe in enumerate(['left upper', 'left lower', 'right upper', 'right middle'] * 2)]
model = SimCroP(cfg)
init = {k: v.clone() for k, v in model.state_dict().items()}
h = pretrain_simcrop(model, vols, reports, TrainConfig(steps=3, batch_size=2, lr=1e-2, warmup=1, weight_decay=0.05, betas=(0.9, 0.95)), desc='ddp simcrop')
moved = max((a - b).abs().max().item() for a, b in zip(init.values(), model.state_dict().values()))
atomic_save_safetensors(model.state_dict(), out/f'rank{rank}.safetensors')
(out/f'rank{rank}.json').write_text(json.dumps(dict(world=world, world_seen=h['world_size'], loss=h['loss'], terms=list(model.terms),
                                                    fusion=h['fusion'], moved=moved)))
torch.distributed.destroy_process_group()
