"""The DTRB network reproduces the official checkpoints' state_dict layouts, and layouts are
recognised from a checkpoint's keys, so published weights load with strict=True."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
import torch

from str_service.dtrb import (
    GridGenerator,
    Model,
    ModelSpec,
    ModelSpecError,
    count_weights,
    default_weights_path,
    infer_spec,
    load_model,
    load_recognizer_model,
    parse_arch,
)

torch.set_num_threads(2)

LAYOUTS = [
    "None-VGG-BiLSTM-CTC",
    "None-ResNet-None-CTC",
    "TPS-ResNet-BiLSTM-CTC",
    "TPS-ResNet-BiLSTM-Attn",
    "None-RCNN-BiLSTM-CTC",
]


@pytest.fixture(scope="module")
def official(parity_dir):
    return json.loads((parity_dir / "dtrb_official_state_dicts.json").read_text())


def _english_g2_path():
    return default_weights_path()  # the installed package's: missing weights fail


@pytest.mark.parametrize("layout", LAYOUTS)
def test_official_layout_keys_shapes_and_count(official, layout):
    entry = official[layout]
    spec = ModelSpec.from_opts(entry["opts"])
    assert spec.name == layout
    model = Model(spec)
    mine = {"module." + k: list(v.shape) for k, v in model.state_dict().items()}
    reference = entry["state_dict"]
    assert sorted(mine) == sorted(reference)
    assert {k: mine[k] for k in reference} == reference
    assert count_weights(model) == entry["num_params"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_inferred_from_checkpoint_keys(official, layout):
    entry = official[layout]
    assert infer_spec(entry["state_dict"]) == ModelSpec.from_opts(entry["opts"])


def test_official_checkpoint_loads_strictly_through_the_inferred_layout(official):
    # A random official-layout checkpoint as the training code saves it: DataParallel keys.
    spec = ModelSpec.from_opts(official["None-RCNN-BiLSTM-CTC"]["opts"])
    saved = OrderedDict(("module." + k, v) for k, v in Model(spec).state_dict().items())
    loaded = load_model(OrderedDict((k[7:], v) for k, v in saved.items()), infer_spec(saved))
    out = loaded(torch.zeros(1, 1, 32, 100))
    assert out.shape == (1, 26, 37)


def test_wrong_arch_fails_with_a_message_naming_str_arch(official):
    spec = ModelSpec.from_opts(official["None-VGG-BiLSTM-CTC"]["opts"])
    state = Model(spec).state_dict()
    wrong = infer_spec(state, arch="None-VGG-None-CTC")
    with pytest.raises(ModelSpecError, match="STR_ARCH"):
        load_model(state, wrong)


def test_english_g2_loads_strictly_with_its_easyocr_layout():
    loaded = load_recognizer_model(_english_g2_path(), device="cpu")
    spec = loaded.spec
    assert spec.name == "None-VGG-BiLSTM-CTC"
    assert (spec.input_channel, spec.output_channel, spec.hidden_size) == (1, 256, 256)
    assert (spec.imgH, spec.num_class, spec.preprocess) == (64, 97, "easyocr")
    assert loaded.charset.num_class == 97
    # CTC steps = W / 4 - 1 at height 64.
    with torch.inference_mode():
        assert loaded.model(torch.zeros(1, 1, 64, 256)).shape == (1, 63, 97)


def small_attn_spec(**sizes: object) -> ModelSpec:
    """A small VGG-Attn model on 32 x 100 inputs, cheap enough to build in a test."""
    base = {"feature": "VGG", "sequence": "None", "prediction": "Attn", "output_channel": 64}
    return ModelSpec(**base, imgH=32, imgW=100, preprocess="dtrb", **sizes)


def test_attn_and_tps_create_their_tensors_on_the_input_device():
    # The official Attn head allocates on a global device; ours must follow the input. With the
    # default device set to "meta", any tensor made without the input's device would land there
    # and the CPU forward would fail.
    spec = small_attn_spec(transformation="TPS", hidden_size=32, num_class=10, batch_max_length=5)
    model = Model(spec).eval()
    image = torch.zeros(2, 1, 32, 100)
    with torch.device("meta"), torch.inference_mode():
        out = model(image)
    assert out.device.type == "cpu"
    assert out.shape == (2, 6, 10)


def test_attn_greedy_decoding_feeds_back_its_own_choices():
    torch.manual_seed(0)
    spec = small_attn_spec(hidden_size=16, num_class=6, batch_max_length=4)
    model = Model(spec).eval()
    image = torch.randn(1, 1, 32, 100)
    with torch.inference_mode():
        greedy = model(image)
        chosen = greedy.argmax(2)
        forced = model(image, text=torch.cat([torch.zeros(1, 1, dtype=torch.long), chosen], 1))
    # Teacher forcing with the greedy choices reproduces greedy decoding step for step.
    torch.testing.assert_close(greedy, forced[:, : greedy.shape[1]])


def test_tps_grid_is_the_identity_when_points_sit_at_the_targets():
    grid = GridGenerator(20, (8, 12))
    half = 10
    xs = torch.linspace(-1, 1, half, dtype=torch.float64)
    targets = torch.cat(
        [
            torch.stack([xs, -torch.ones(half, dtype=torch.float64)], 1),
            torch.stack([xs, torch.ones(half, dtype=torch.float64)], 1),
        ]
    ).float()
    out = grid(targets[None])
    gx = (np.arange(-12, 12, 2) + 1.0) / 12
    gy = (np.arange(-8, 8, 2) + 1.0) / 8
    expected = np.stack(np.meshgrid(gx, gy), axis=2)
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-4)


def test_tps_buffers_depend_on_the_image_size():
    small = Model(ModelSpec(transformation="TPS", imgH=32, imgW=100, preprocess="dtrb"))
    wide = Model(ModelSpec(transformation="TPS", imgH=32, imgW=128, preprocess="dtrb"))
    assert small.state_dict()["Transformation.GridGenerator.P_hat"].shape == (3200, 23)
    assert wide.state_dict()["Transformation.GridGenerator.P_hat"].shape == (4096, 23)
    state = wide.state_dict()
    assert infer_spec(state).imgW == 128
    assert infer_spec(state, arch="TPS-VGG-BiLSTM-CTC:imgH=64").imgW == 64


def test_parse_arch_reads_stages_and_overrides():
    assert parse_arch("tps-resnet-bilstm-attn") == {
        "transformation": "TPS",
        "feature": "ResNet",
        "sequence": "BiLSTM",
        "prediction": "Attn",
    }
    parsed = parse_arch("None-VGG-BiLSTM-CTC:imgH=64, preprocess=easyocr")
    assert parsed["imgH"] == 64 and parsed["preprocess"] == "easyocr"
    for bad in ("VGG-BiLSTM-CTC", "None-VGG-GRU-CTC", "None-VGG-BiLSTM-CTC:colour=red"):
        with pytest.raises(ModelSpecError):
            parse_arch(bad)


def test_spec_rejects_tps_without_a_fixed_input_size():
    with pytest.raises(ModelSpecError):
        ModelSpec(transformation="TPS", preprocess="easyocr")
