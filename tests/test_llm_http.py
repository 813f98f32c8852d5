"""The OpenAI-compatible HTTP client against medbook's own loopback server, over real sockets.

Every wait here is bounded: clients carry short timeouts and few retries, polling loops have a deadline and a count.
"""
import json, os, socket, subprocess, sys, threading, time, urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import torch

from medbook.core import ConfigError, DataError, MedbookError, LLMClient
from medbook.llm import HFClient, OpenAIClient, ScriptedClient, serve, serve_model_dir

CONV = [{'role': 'system', 'content': 'You are a radiologist.'}, {'role': 'user', 'content': 'Is the heart enlarged?'}]

def echo_client():
    return ScriptedClient(lambda conv: f"{len(conv)}|{conv[-1]['content']}", name='echo')

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def raw(url, body=None, method=None, timeout=5):
    "(status, decoded JSON) of one request, without the client's retries."
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method or ('POST' if data is not None else 'GET'), headers={'Content-Type': 'application/json'})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as r: return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e: return e.code, json.loads(e.read())

@pytest.fixture
def server():
    srv = serve(echo_client(), model_name='echo')
    yield srv
    srv.stop()

def test_round_trip_and_batch_order(server):
    cli = OpenAIClient(server.url, timeout=5, max_retries=0, max_workers=4)
    assert isinstance(cli, LLMClient)
    assert cli.models() == ['echo'] and cli.model == 'echo'
    convs = [[{'role': 'user', 'content': f'q{i}'}] for i in range(12)]
    assert cli.chat(convs) == [f'1|q{i}' for i in range(12)]          # concurrent requests, replies in input order
    assert cli.generate(['a', 'b']) == ['1|a', '1|b']
    assert cli.chat([CONV]) == ['2|Is the heart enlarged?']

@pytest.mark.timeout(60)
def test_retry_after_503(server):
    cli = OpenAIClient(server.url, model='echo', timeout=5, max_retries=3, backoff=0.01)
    server.inject_fault(503, times=2)
    n0 = server.requests
    assert cli.chat([CONV]) == ['2|Is the heart enlarged?']
    assert cli.attempts == 3 and server.requests - n0 == 3            # two 503s, then the answer

@pytest.mark.timeout(60)
def test_gives_up_after_max_retries(server):
    cli = OpenAIClient(server.url, model='echo', timeout=5, max_retries=2, backoff=0.01)
    server.inject_fault(503, times=10)
    with pytest.raises(MedbookError, match=r'no answer after 3 attempts; last error: HTTP 503'):
        cli.generate(['x'])
    assert cli.attempts == 3

@pytest.mark.timeout(60)
def test_timeout_then_retry(server):
    server.inject_fault(status=None, delay=1.0, times=1)               # the first request stalls past the timeout
    cli = OpenAIClient(server.url, model='echo', timeout=0.3, max_retries=2, backoff=0.01)
    assert cli.generate(['late']) == ['1|late']
    assert cli.attempts == 2

@pytest.mark.timeout(60)
def test_timeout_gives_up_after_max_retries(server):
    server.inject_fault(status=None, delay=1.0, times=3)
    cli = OpenAIClient(server.url, model='echo', timeout=0.2, max_retries=1, backoff=0.01)
    with pytest.raises(MedbookError, match='no answer after 2 attempts; last error: timed out after 0.2 s'):
        cli.chat([CONV])
    assert cli.attempts == 2

def test_client_errors_are_not_retried(server):
    cli = OpenAIClient(server.url, model='echo', timeout=5, max_retries=3, backoff=0.01)
    with pytest.raises(MedbookError, match='HTTP 400: max_tokens must be an integer'):
        cli.chat([CONV], max_new_tokens=0)
    assert cli.attempts == 1
    with pytest.raises(DataError, match='unknown role'):                 # caught before sending
        cli.chat([[{'role': 'doctor', 'content': 'hi'}]])
    assert cli.attempts == 1
    with pytest.raises(MedbookError, match='HTTP 400: .*unknown role'):     # and by the server, for other clients
        cli.request('POST', '/chat/completions', {'messages': [{'role': 'doctor', 'content': 'x'}]})
    with pytest.raises(MedbookError, match='HTTP 404'):
        cli.request('POST', '/embeddings', {'input': 'x'})

def test_server_rejects_bad_requests(server):
    u = server.url
    assert raw(u + '/chat/completions', b'{not json')[0] == 400
    st, body = raw(u + '/chat/completions', {'messages': CONV, 'stream': True})
    assert st == 400 and 'streaming' in body['error']['message']
    assert raw(u + '/completions', {'prompt': [1, 2]})[0] == 400
    assert raw(u + '/completions', {'prompt': 'x' * (2**20 + 10)})[0] == 413
    assert raw(u + '/nowhere')[0] == 404
    st, body = raw(u + '/completions', {'prompt': ['a', 'b'], 'max_tokens': 4})
    assert st == 200 and [c['text'] for c in body['choices']] == ['1|a', '1|b'] and body['object'] == 'text_completion'

def test_api_key():
    with serve(echo_client(), api_key='s3cret') as srv:
        with pytest.raises(MedbookError, match='HTTP 401'):
            OpenAIClient(srv.url, model='echo', api_key='wrong', max_retries=0).generate(['x'])
        assert OpenAIClient(srv.url, model='echo', api_key='s3cret').generate(['x']) == ['1|x']

def test_malformed_replies():
    with serve(echo_client()) as srv:
        srv.handle = lambda path, req: (200, {'choices': [{'message': {'role': 'assistant'}}]})
        with pytest.raises(MedbookError, match=r'malformed reply, no choices\[0\].message.content'):
            OpenAIClient(srv.url, model='echo', max_retries=0).chat([CONV])
        srv.handle = lambda path, req: (200, {'choices': [{'text': 7}]})
        with pytest.raises(MedbookError, match=r'no choices\[0\].text'):
            OpenAIClient(srv.url, model='echo', max_retries=0).generate(['x'])

    class NotJSON(BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_POST(self):
            self.rfile.read(int(self.headers['Content-Length']))
            self.send_response(200); self.send_header('Content-Length', '5'); self.end_headers(); self.wfile.write(b'hello')
    httpd = HTTPServer(('127.0.0.1', 0), NotJSON)
    t = threading.Thread(target=httpd.serve_forever, kwargs={'poll_interval': 0.1}, daemon=True); t.start()
    try:
        with pytest.raises(MedbookError, match="the reply is not JSON: b'hello'"):
            OpenAIClient(f'http://127.0.0.1:{httpd.server_address[1]}/v1', model='m', max_retries=0).generate(['x'])
    finally: httpd.shutdown(); httpd.server_close()

@pytest.mark.timeout(60)
def test_connection_refused_is_retried_then_reported():
    cli = OpenAIClient(f'http://127.0.0.1:{free_port()}/v1', model='m', timeout=2, max_retries=2, backoff=0.01)
    with pytest.raises(MedbookError, match='ConnectionRefusedError'):
        cli.generate(['x'])
    assert cli.attempts == 3

def test_loopback_only(tmp_path):
    with pytest.raises(ConfigError, match='loopback only'): serve(echo_client(), host='0.0.0.0')
    with pytest.raises(ConfigError, match='loopback only'): serve(echo_client(), host='192.168.1.10')
    with pytest.raises(ConfigError, match='not an LLMClient'): serve(object())
    with pytest.raises(DataError, match='config.json missing'): serve_model_dir(tmp_path)
    with pytest.raises(ConfigError, match='base_url'): OpenAIClient('ftp://x/v1')

@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    "A random two-layer Llama with the tiny domain BPE tokenizer, written by save_pretrained."
    from transformers import LlamaConfig, LlamaForCausalLM
    from medbook.tokenizers import load_bpe_tokenizer
    tok = load_bpe_tokenizer('tiny')
    torch.manual_seed(0)
    m = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                     num_key_value_heads=2, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    d = tmp_path_factory.mktemp('lm')/'rand-llama'
    m.save_pretrained(d); tok.save_pretrained(d)
    return d

@pytest.mark.timeout(300)
def test_serve_model_dir_subprocess(model_dir):
    "`medbook serve MODEL_DIR` in its own process; the HTTP client gets what the model gives in process."
    port = free_port()
    code = f'from medbook.llm import serve_model_dir; serve_model_dir({str(model_dir)!r}, port={port}, device="cpu")'
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, 'MEDBOOK_PROGRESS': '0'})
    try:
        cli = OpenAIClient(f'http://127.0.0.1:{port}/v1', timeout=30, max_retries=0)
        deadline, ids = time.time() + 90, None
        for _ in range(900):                                        # poll until it listens: bounded in count and time
            if proc.poll() is not None: pytest.fail(f'server exited: {proc.stdout.read()}')
            try: ids = cli.models(); break
            except MedbookError:
                if time.time() > deadline: break
                time.sleep(0.1)
        assert ids == ['rand-llama'], ids
        local = HFClient(model_dir, device='cpu')
        prompts = ['The heart is', 'No acute cardiopulmonary abnormality', 'Pleural']
        assert cli.generate(prompts, max_new_tokens=6) == local.generate(prompts, max_new_tokens=6)
        assert cli.chat([CONV], max_new_tokens=5) == local.chat([CONV], max_new_tokens=5)
        st, body = raw(cli.base_url + '/chat/completions', {'model': 'rand-llama', 'messages': CONV, 'max_tokens': 3, 'temperature': 0}, timeout=30)
        assert st == 200 and body['object'] == 'chat.completion' and body['usage']['completion_tokens'] <= 3
        assert body['choices'][0]['finish_reason'] in ('stop', 'length')
    finally:
        proc.terminate()
        try: proc.wait(10)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait(10)

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_hf_client_cuda_bf16(model_dir):
    "On a GPU the same client loads in bfloat16; a batch still answers as each prompt alone, and serves over HTTP."
    gpu = HFClient(model_dir)
    assert gpu.device.type == 'cuda' and next(gpu.model.parameters()).dtype == torch.bfloat16
    prompts = ['The heart is', 'No acute cardiopulmonary abnormality', 'Pleural']
    batched = gpu.generate(prompts, max_new_tokens=6)
    assert batched == [gpu.generate([p], max_new_tokens=6)[0] for p in prompts]
    with serve(gpu) as srv:
        assert OpenAIClient(srv.url, timeout=30).generate(prompts, max_new_tokens=6) == batched
