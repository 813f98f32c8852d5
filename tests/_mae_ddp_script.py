"""Run by test_mae_torchrun.py under `torchrun --nproc_per_node 2`: a few `pretrain` steps per rank, then save each rank's weights.

`python _mae_ddp_script.py OUT_DIR` (under torchrun). Each rank starts from a *different* random initialisation on purpose:
DistributedDataParallel must broadcast rank 0's weights, and gradient averaging must keep the ranks identical.
"""
import json, sys
from pathlib import Path
import torch
from medbook.core import atomic_save_safetensors, dist_info
from medbook.models.mae import MAE3D, MultiModalMAE, ViT3DConfig, pretrain, tokenize_reports
from medbook.train import TrainConfig
from medbook.tokenizers import minilm_tokenizer

out = Path(sys.argv[1]); rank, world, _ = dist_info()
torch.manual_seed(100 + rank)                      # different init per rank
cfg = ViT3DConfig(img_size=(16, 32, 32), hidden_size=24, num_layers=2, num_heads=4)
g = torch.Generator().manual_seed(0)                # the same data on every rank
vols = torch.rand(12, 1, 16, 32, 32, generator=g) * 2 - 1
mae = MAE3D(cfg, decoder_hidden=24, decoder_layers=1, decoder_heads=4)
init = {k: v.clone() for k, v in mae.state_dict().items()}
cfg3 = TrainConfig(steps=3, batch_size=2, lr=1e-2, warmup=1, weight_decay=0.05, betas=(0.9, 0.95))
h1 = pretrain(mae, vols, cfg3, desc='ddp mae')
tok = minilm_tokenizer()
txt = tokenize_reports([f'A {i + 3} mm nodule in the left lower lobe. No pleural effusion.' for i in range(12)], tok, max_len=24)
mm = MultiModalMAE(MAE3D(cfg, 24, 1, 4), tok.vocab_size, text_hidden=24, text_layers=1, text_heads=4, max_len=24)
h2 = pretrain(mm, vols, cfg3, text=txt, mask_token_id=tok.mask_token_id, desc='ddp mae+mlm')
moved = max((a - b).abs().max().item() for a, b in zip(init.values(), mae.state_dict().values()))
atomic_save_safetensors({**{f'mae/{k}': v for k, v in mae.state_dict().items()}, **{f'mm/{k}': v for k, v in mm.state_dict().items()}},
                        out/f'rank{rank}.safetensors')
(out/f'rank{rank}.json').write_text(json.dumps(dict(world=world, world_seen=h1['world_size'], mae_loss=h1['loss'], mm_loss=h2['loss'], moved=moved)))
torch.distributed.destroy_process_group()
