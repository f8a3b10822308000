"""common.config: the documented defaults, environment parsing, and start-up errors that name the
variable to fix."""

from __future__ import annotations

import pytest

from common.config import ConfigError, Settings


def test_defaults_match_the_design() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.str_max_batch == 350
    assert settings.ocr_max_upload_mb == 20
    assert settings.max_upload_bytes == 20 * 1024 * 1024
    assert settings.ocr_max_pixels == 50_000_000
    assert settings.ocr_mode == "embedded"
    assert settings.ocr_device == "auto"
    assert settings.str_queue == "ocr.str.crops"
    assert settings.ocr_api_key is None
    assert settings.craft_weights is None and settings.str_weights is None
    # Reliability limits: a default deployment binds loopback and refuses runaway requests.
    assert settings.bind == "127.0.0.1"
    assert settings.str_max_crops == 500
    assert settings.ocr_max_detect_pixels == 1280 * 1280
    assert settings.ocr_max_inflight == 4
    assert settings.str_delivery_limit == 3
    assert (settings.dead_letter_exchange, settings.dead_letter_queue) == (
        "ocr.str.crops.dlx",
        "ocr.str.crops.dead",
    )


def test_environment_values_are_parsed() -> None:
    env = {
        "RABBITMQ_URL": "amqp://u:p@broker:5672/%2F",
        "STD_URL": "http://std:5001",
        "STR_URL": "http://str:5002",
        "STR_MAX_BATCH": " 64 ",
        "STR_MAX_WAIT_MS": "12.5",
        "OCR_TIMEOUT_S": "30",
        "OCR_DEVICE": "cuda:1",
        "OCR_THREADS": "2",
        "OCR_MODE": "distributed",
        "CRAFT_WEIGHTS": "/models/craft.pth",
        "STR_WEIGHTS": "/models/str.pth",
        "STR_ARCH": "None-VGG-BiLSTM-CTC",
        "OCR_MAX_UPLOAD_MB": "0.5",
        "OCR_MAX_PIXELS": "1000000",
        "OCR_API_KEY": "s3cret",
    }
    s = Settings.from_env(env)
    assert s.rabbitmq_url == "amqp://u:p@broker:5672/%2F"
    assert (s.std_url, s.str_url) == ("http://std:5001", "http://str:5002")
    assert s.str_max_batch == 64 and isinstance(s.str_max_batch, int)
    assert s.str_max_wait_ms == 12.5
    assert s.ocr_timeout_s == 30.0 and isinstance(s.ocr_timeout_s, float)
    assert s.ocr_device == "cuda:1"
    assert s.ocr_threads == 2
    assert s.ocr_mode == "distributed"
    assert (s.craft_weights, s.str_weights) == ("/models/craft.pth", "/models/str.pth")
    assert s.str_arch == "None-VGG-BiLSTM-CTC"
    assert s.max_upload_bytes == 512 * 1024
    assert s.ocr_max_pixels == 1_000_000
    assert s.ocr_api_key == "s3cret"


def test_empty_values_keep_the_default() -> None:
    s = Settings.from_env({"STR_MAX_BATCH": "", "OCR_API_KEY": "  ", "OCR_MODE": ""})
    assert s.str_max_batch == 350 and s.ocr_api_key is None and s.ocr_mode == "embedded"


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STR_MAX_BATCH", "7")
    assert Settings.from_env().str_max_batch == 7


@pytest.mark.parametrize(
    ("name", "value"),
    [
        # not a number of the right kind
        ("STR_MAX_BATCH", "many"),
        ("STR_MAX_BATCH", "1.5"),
        ("OCR_MAX_PIXELS", "5e7x"),
        ("STR_MAX_WAIT_MS", "fast"),
        ("OCR_TIMEOUT_S", "10s"),
        ("OCR_MAX_UPLOAD_MB", "inf"),
        ("OCR_TIMEOUT_S", "nan"),
        # out of range, or not one of the choices
        ("OCR_MODE", "turbo"),
        ("OCR_DEVICE", "tpu"),
        ("STR_BUCKET_POLICY", "random"),
        ("STR_DECIMAL_MARK", ";"),
        ("STR_MAX_BATCH", "0"),
        ("STR_MAX_WAIT_MS", "-1"),
        ("OCR_TIMEOUT_S", "0"),
        ("OCR_THREADS", "-2"),
        ("OCR_MAX_UPLOAD_MB", "0"),
        ("OCR_MAX_PIXELS", "0"),
        ("OCR_MAX_INFLIGHT", "0"),
        ("OCR_MAX_DETECT_PIXELS", "0"),
        ("STR_DELIVERY_LIMIT", "0"),
        ("STR_MAX_QUEUED_CROPS", "0"),
        ("PORT", "70000"),
        ("OCR_HTTP_THREADS", "0"),
        ("OCR_CLIENT_TIMEOUT_S", "0"),
        ("METRICS_PORT", "-1"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    """Start-up stops with the name of the variable to fix, whatever is wrong with its value."""
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_config_error_is_a_value_error() -> None:
    """Start-up code that catches ValueError for bad input still catches it."""
    with pytest.raises(ValueError):
        Settings.from_env({"OCR_MODE": "x"})


def test_overrides_are_validated_too() -> None:
    base = Settings()
    assert base.with_overrides(str_max_batch=8).str_max_batch == 8
    assert base.str_max_batch == 350  # settings are immutable values
    with pytest.raises(ConfigError, match="STR_MAX_BATCH"):
        base.with_overrides(str_max_batch=0)
