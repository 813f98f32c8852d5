"A tiny training run for test_resume.py: `python _train_script.py CKPT_DIR OUT.safetensors N_STEPS SLEEP`."
import sys, time
import torch
from medbook.core import atomic_save_safetensors
from medbook.train import TrainConfig, fit

ckpt_dir, out, n_steps, sleep = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Dropout(0.25), torch.nn.Tanh(), torch.nn.Linear(32, 2))
X, y = torch.randn(256, 8), torch.randint(0, 2, (256,))

def loss_fn(model, batch, g):
    time.sleep(sleep)
    return torch.nn.functional.cross_entropy(model(batch['x']), batch['y'])

cfg = TrainConfig(steps=n_steps, batch_size=16, lr=5e-3, weight_decay=0.01, warmup=4, ckpt_every=1, keep=3)
fit(model, loss_fn, {'x': X, 'y': y}, cfg, None if ckpt_dir == '-' else ckpt_dir)
atomic_save_safetensors(model.state_dict(), out)
