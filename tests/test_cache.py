"The artifact cache under two concurrent processes: one build, whole files."
import multiprocessing as mp, os, time
from pathlib import Path

def _worker(home, counter, q):
    from medbook.core import cached
    def build(p):
        with open(counter, 'a') as f: f.write('built\n')
        for i in range(20):  # a slow build, written piece by piece
            with open(p/'data.txt', 'a') as f: f.write(f'{i}\n')
            time.sleep(0.02)
    q.put(str(cached('shared-artifact', build, home=home)))

def test_two_processes_build_once(tmp_path):
    ctx = mp.get_context('spawn')
    q = ctx.Queue()
    counter = tmp_path/'builds.txt'
    ps = [ctx.Process(target=_worker, args=(str(tmp_path), str(counter), q)) for _ in range(2)]
    for p in ps: p.start()
    for p in ps: p.join(120); assert p.exitcode == 0
    paths = {q.get(timeout=5), q.get(timeout=5)}
    assert len(paths) == 1
    assert counter.read_text() == 'built\n'
    assert (Path(paths.pop())/'data.txt').read_text() == ''.join(f'{i}\n' for i in range(20))
    assert not [p for p in (tmp_path/'artifacts').iterdir() if '.tmp-' in p.name]
