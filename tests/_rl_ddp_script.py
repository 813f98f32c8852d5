"""Run by test_reasoning_rl.py under `torchrun --nproc_per_node 2`: a few SFT then GRPO steps of the tiny config, then each rank's weights.

`python _rl_ddp_script.py OUT_DIR` (under torchrun, gloo on CPU; NCCL when run on GPUs). The same `train_sft` / `train_rl`
calls as the notebook: TRL's trainers read torchrun's environment through accelerate, so nothing here is distributed by hand.
"""
import json, sys
from pathlib import Path
import torch
from medbook.core import atomic_save_safetensors, dist_info
from medbook.llm import build_small_lm
from medbook.reasoning.rl import (load_rl_data, sft_examples, rl_examples, trl_args, train_sft, train_rl, save_policy, reward_curve)

out = Path(sys.argv[1]); rank, world, _ = dist_info()
data, base = load_rl_data('tiny', 0), build_small_lm('tiny', 0)   # built beforehand by the test (no race between ranks)
sft = train_sft(base, sft_examples(data['sft'], 'complex CoT'), trl_args('sft', out/'sft', max_steps=2, per_device_train_batch_size=2, learning_rate=1e-3, max_length=512, seed=0))
policy = save_policy(sft, out/'sft-model')
rl = train_rl(policy, rl_examples(data['rl_problems']), trl_args('grpo', out/'grpo', max_steps=2, per_device_train_batch_size=2, num_generations=2,
                                                                 max_completion_length=16, learning_rate=1e-4, seed=0))
m = rl.accelerator.unwrap_model(rl.model)
atomic_save_safetensors({k: v.detach().float() for k, v in m.state_dict().items()}, out/f'rank{rank}.safetensors')
(out/f'rank{rank}.json').write_text(json.dumps(dict(world=world, seen_world=rl.accelerator.num_processes, sft_steps=sft.state.global_step,
                                                   rl_steps=rl.state.global_step, rewards=reward_curve(rl))))
