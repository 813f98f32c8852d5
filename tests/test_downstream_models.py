"""medbook.downstream's models: `EncoderClassifier` and `UNETR3D` round-trip through save_pretrained / from_pretrained, and keep
the initial weights of a seed (and the encoder they are given)."""
import copy
import pytest
import torch

from medbook.core import ConfigError, DataError
from medbook.models.mae import ViT3D, ViT3DConfig
from medbook.downstream import EncoderClassifier, EncoderClassifierConfig, UNETR3D, UNETR3DConfig, vit_dict


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _vit(seed=0, **kw):
    torch.manual_seed(seed)
    return ViT3D(ViT3DConfig(**dict(dict(img_size=(16, 32, 32), patch_size=(8, 16, 16), hidden_size=12, num_layers=2, num_heads=2), **kw)))


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_encoder_classifier_round_trip(tmp_path):
    model = EncoderClassifier.from_encoder(_vit(), n_labels=4)
    with torch.no_grad(): model.head.weight.normal_()          # a non-trivial head, so the logits differ from zero
    model.save_pretrained(tmp_path/'clf')
    assert sorted(p.name for p in (tmp_path/'clf').iterdir()) == ['config.json', 'model.safetensors']
    back = EncoderClassifier.from_pretrained(tmp_path/'clf')
    assert isinstance(back.config, EncoderClassifierConfig) and back.config.n_labels == 4 and back.config.vit == vit_dict(model.encoder.config)
    assert _same_state(model, back) and not back.training
    x = torch.randn(2, 1, 16, 32, 32)
    with torch.no_grad(): assert torch.equal(model.eval()(x), back(x))
    with pytest.raises(DataError, match="not a 'medbook-unetr3d' one"): UNETR3D.from_pretrained(tmp_path/'clf')


@pytest.mark.parametrize('kw', [dict(levels=4, feature_size=4), dict(levels=2, feature_size=4, freeze_encoder=True),
                                dict(levels=3, feature_size=4, out_channels=3, skip_layers=(1, 1, 0), norm_name=('group', {'num_groups': 2}))])
def test_unetr3d_round_trip(tmp_path, kw):
    model = UNETR3D.from_encoder(_vit(), **kw).eval()
    model.save_pretrained(tmp_path/'unetr')
    back = UNETR3D.from_pretrained(tmp_path/'unetr')
    assert back.config.to_dict() == model.config.to_dict() and back.skip_layers == model.skip_layers
    assert _same_state(model, back)
    assert [p.requires_grad for p in back.parameters()] == [p.requires_grad for p in model.parameters()]
    x = torch.randn(2, 1, 16, 32, 32)
    with torch.no_grad(): assert torch.equal(model(x), back(x))


def test_same_seed_same_initial_weights_and_the_encoder_is_kept():
    enc = _vit()
    ref = copy.deepcopy(enc.state_dict())
    torch.manual_seed(1); a = EncoderClassifier.from_encoder(copy.deepcopy(enc), 3)
    torch.manual_seed(1); b = EncoderClassifier.from_encoder(copy.deepcopy(enc), 3)
    assert _same_state(a, b) and all(torch.equal(a.encoder.state_dict()[k], v) for k, v in ref.items())
    assert a.head.weight.std() < 1e-4 and torch.equal(a.head.bias, torch.zeros(3))        # SimCroP's head: std 2e-5, zero bias
    torch.manual_seed(2); u = UNETR3D.from_encoder(copy.deepcopy(enc), feature_size=4, levels=2)
    torch.manual_seed(2); v = UNETR3D.from_encoder(copy.deepcopy(enc), feature_size=4, levels=2)
    assert _same_state(u, v) and all(torch.equal(u.encoder.state_dict()[k], t) for k, t in ref.items())
    assert u.encoder is not enc and UNETR3D.from_encoder(enc, levels=2).encoder is enc     # wrapped as it is, not copied


def test_configs_check_their_settings():
    with pytest.raises(ConfigError, match='n_labels must be >= 1'): EncoderClassifierConfig(n_labels=0)
    with pytest.raises(ConfigError, match='levels must be 2, 3 or 4'): UNETR3DConfig(vit_dict(_vit().config), levels=1)
    with pytest.raises(ConfigError, match='patch sides of 8 or 16'): UNETR3DConfig(dict(img_size=(16, 32, 32), patch_size=(4, 16, 16), hidden_size=12, num_heads=2))
    with pytest.raises(ConfigError, match='does not match the config'): EncoderClassifier(EncoderClassifierConfig(), _vit())
    assert EncoderClassifier(EncoderClassifierConfig(vit_dict(_vit().config), 2)).encoder.config.hidden_size == 12   # a fresh encoder from the config
