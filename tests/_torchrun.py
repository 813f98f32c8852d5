"Shared by the torchrun tests: run a script as 2 CPU ranks (gloo) and read back what each rank wrote."
import json, os, shutil, socket, subprocess, sys
from pathlib import Path
from safetensors.torch import load_file

def run_two_ranks(script: str,  # a file in tests/ that writes rank{r}.json and rank{r}.safetensors into argv[1]
                  out: Path,  # the folder it writes into
                  timeout: int = 300):
    "((rank 0's json, rank 1's json), (rank 0's tensors, rank 1's tensors)); fails with the ranks' output if torchrun does."
    torchrun = shutil.which('torchrun') or str(Path(sys.executable).parent/'torchrun')
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    env = {**os.environ, 'MEDBOOK_PROGRESS': '0', 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': ''}
    cmd = [torchrun, '--nproc_per_node', '2', '--master_addr', '127.0.0.1', '--master_port', str(port),
           str(Path(__file__).parent/script), str(out)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    js = tuple(json.loads((out/f'rank{r}.json').read_text()) for r in (0, 1))
    ws = tuple(load_file(str(out/f'rank{r}.safetensors')) for r in (0, 1))
    return js, ws
