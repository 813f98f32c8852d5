"A tiny training run for test_resume.py: `python _train_script.py CKPT_DIR OUT.safetensors N_STEPS SLEEP`."
import sys, time
from pathlib import Path
import torch
from medbook.core import train_steps, atomic_save_safetensors

ckpt_dir, out, n_steps, sleep = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Dropout(0.25), torch.nn.Tanh(), torch.nn.Linear(32, 2))
opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n_steps)
X, y = torch.randn(256, 8), torch.randint(0, 2, (256,))

def loss_fn(step):
    time.sleep(sleep)
    idx = torch.randint(0, 256, (16,))
    return torch.nn.functional.cross_entropy(model(X[idx]), y[idx])

train_steps(model, opt, loss_fn, n_steps, ckpt_dir=None if ckpt_dir == '-' else ckpt_dir, ckpt_every=1, scheduler=sched, keep=3)
atomic_save_safetensors(model.state_dict(), out)
