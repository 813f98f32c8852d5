"""The small LM: resumable pretraining, the saved directory, bad inputs."""
import json
import pytest, torch

from medbook.core import DataError, ConfigError
from medbook.llm import (pretrain_small_lm, eval_windows, lm_perplexity, unigram_perplexity, pack_documents, HFClient,
                         SIMPLE_CHAT_TEMPLATE, with_bos, SmallLMConfig, SMALL_LM_CONFIGS, lm_config, window_sampler)

@pytest.fixture(scope='module')
def tok():
    from medbook.tokenizers import load_bpe_tokenizer
    return load_bpe_tokenizer('tiny')

@pytest.fixture(scope='module')
def stream(tok):
    docs = ['FINDINGS: The heart is normal in size. The lungs are clear.\nIMPRESSION: No acute cardiopulmonary abnormality.',
            'J45.909 Unspecified asthma, uncomplicated\nIncludes: Asthma NOS'] * 40
    return pack_documents(tok, docs)

def test_interrupted_pretraining_resumes_exactly(tok, stream, tmp_path):
    ref, ref_h = pretrain_small_lm(tok, stream, 'tiny', seed=3, device='cpu', steps=12)
    pretrain_small_lm(tok, stream, 'tiny', seed=3, device='cpu', steps=12, ckpt_dir=tmp_path, stop_after=5)
    res, h = pretrain_small_lm(tok, stream, 'tiny', seed=3, device='cpu', steps=12, ckpt_dir=tmp_path)
    assert h['loss'] == ref_h['loss'] and len(h['loss']) == 12 and h['steps_run'] == 7
    for a, b in zip(ref.state_dict().values(), res.state_dict().values()): assert torch.equal(a, b)

def test_saved_directory_loads_everywhere(tok, stream, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model, _ = pretrain_small_lm(tok, stream, 'tiny', seed=0, device='cpu', steps=3)
    t = AutoTokenizer.from_pretrained(tok.name_or_path); t.chat_template = SIMPLE_CHAT_TEMPLATE; with_bos(t)
    model.save_pretrained(tmp_path); t.save_pretrained(tmp_path)
    m2, t2 = AutoModelForCausalLM.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(tmp_path)
    assert t2.chat_template == SIMPLE_CHAT_TEMPLATE and t2('The heart')['input_ids'][0] == t2.bos_token_id
    w = eval_windows(stream, 32, 4)
    assert lm_perplexity(m2, w) == pytest.approx(lm_perplexity(model, w))
    c = HFClient(tmp_path, device='cpu')
    assert len(c.chat([[{'role': 'user', 'content': 'Is the heart enlarged?'}]], max_new_tokens=4)) == 1

def test_bad_inputs(tok):
    with pytest.raises(DataError, match='shorter than one window'):
        pretrain_small_lm(tok, torch.arange(10, dtype=torch.int32), 'tiny', device='cpu', steps=2)
    with pytest.raises(DataError, match='no documents'): pack_documents(tok, [])
    with pytest.raises(DataError, match='no window'): eval_windows(torch.arange(5), 32)
    with pytest.raises(ConfigError, match='unknown scale'): pretrain_small_lm(tok, torch.arange(1000), 'huge')

def test_unigram_uniform_is_vocab_size():
    w = torch.randint(0, 50, (3, 8))
    assert unigram_perplexity(torch.arange(50), w, 50) == pytest.approx(50)

def test_configs_are_frozen_validated_and_varied_with_replace():
    from dataclasses import replace, FrozenInstanceError
    assert set(SMALL_LM_CONFIGS) == {'tiny', 'small', 'full'} and lm_config('tiny') is SMALL_LM_CONFIGS['tiny']
    c = lm_config('tiny')
    with pytest.raises(FrozenInstanceError): c.seq = 32
    assert replace(c, train=replace(c.train, steps=5)).train.steps == 5 and c.train.steps == 120
    with pytest.raises(ConfigError, match='SmallLMConfig: hidden \\(66\\) must be a multiple of heads'): replace(c, hidden=66)
    with pytest.raises(ConfigError, match="text must be 'tiny'"): replace(c, text='huge')
    with pytest.raises(ConfigError, match='train must be a TrainConfig'): replace(c, train={'steps': 3})

def test_windows_are_a_function_of_seed_and_step(stream):
    f, g = window_sampler(stream, 16, 4, seed=1), window_sampler(stream, 16, 4, seed=1)
    assert torch.equal(f(7), g(7)) and not torch.equal(f(7), window_sampler(stream, 16, 4, seed=2)(7))

def test_a_config_object_and_the_evaluate_hook(tok, stream):
    from dataclasses import replace
    c = replace(lm_config('tiny'), seq=32, layers=1, train=replace(lm_config('tiny').train, steps=6))
    w = eval_windows(stream, 32, 4)
    model, h = pretrain_small_lm(tok, stream, c, seed=0, device='cpu', evaluate=lambda m: lm_perplexity(m, w), eval_every=3)
    assert model.config.num_hidden_layers == 1 and len(h['loss']) == 6
    assert h['eval_step'] == [3, 6] and h['eval'][-1] == pytest.approx(lm_perplexity(model, w))
