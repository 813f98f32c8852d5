"""Benchmarks of the LLM layer (pytest-benchmark; compare within a group, never assert a time).

group `hf-generate`: 8 prompts through `HFClient.generate` as one left-padded batch vs one call per prompt
(the reference): the ratio of the means is what batching buys.
group `http-overhead`: the same batch in process vs through `serve` + `OpenAIClient` over loopback HTTP: the ratio
is the transport's cost.
"""
import pytest, torch
from medbook.llm import HFClient, OpenAIClient, serve

PROMPTS = ['The heart is', 'No acute cardiopulmonary abnormality', 'Pleural', 'FINDINGS: The lungs',
           'IMPRESSION:', 'Mild cardiomegaly', 'There is no pneumothorax', 'J45.909']

@pytest.fixture(scope='module')
def client():
    from transformers import LlamaConfig, LlamaForCausalLM
    from medbook.tokenizers import load_bpe_tokenizer
    tok = load_bpe_tokenizer('tiny')
    torch.manual_seed(0)
    m = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
                                     num_key_value_heads=4, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    return HFClient(m, tok, device='cpu', batch_size=8)

@pytest.mark.benchmark(group='hf-generate')
def test_bench_generate_batched(benchmark, client):
    benchmark.pedantic(lambda: client.generate(PROMPTS, max_new_tokens=16), rounds=5, iterations=1, warmup_rounds=1)

@pytest.mark.benchmark(group='hf-generate')
def test_bench_generate_one_by_one_reference(benchmark, client):
    benchmark.pedantic(lambda: [client.generate([p], max_new_tokens=16) for p in PROMPTS], rounds=5, iterations=1, warmup_rounds=1)

@pytest.mark.benchmark(group='http-overhead')
def test_bench_in_process_reference(benchmark, client):
    benchmark.pedantic(lambda: client.generate(PROMPTS[:2], max_new_tokens=8), rounds=5, iterations=1, warmup_rounds=1)

@pytest.mark.benchmark(group='http-overhead')
def test_bench_over_http(benchmark, client):
    with serve(client, model_name='bench') as srv:
        cli = OpenAIClient(srv.url, model='bench', timeout=60, max_retries=0, max_workers=1)
        benchmark.pedantic(lambda: cli.generate(PROMPTS[:2], max_new_tokens=8), rounds=5, iterations=1, warmup_rounds=1)
