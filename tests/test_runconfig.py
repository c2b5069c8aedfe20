"""Resume configuration checks: every differing field named with old and new values, and
deliberate overrides parsed to the field's type, unknown fields refused with the valid ones."""

import math

import pytest

from nnjax import runconfig as rc

SAVED = {
    "model": {"spec": ["mlp", {"hidden": [64, 32], "activation": "relu"}]},
    "loss": "softmax_cross_entropy",
    "optimizer": {"name": "adam", "learning_rate": 1e-3, "b1": 0.9},
    "schedule": None,
    "dtype": "float32",
    "devices": 1,
}


def _current(**changes):
    out = {
        "model": {"spec": ("mlp", {"hidden": (64, 32), "activation": "relu"})},  # tuples
        "loss": "softmax_cross_entropy",
        "optimizer": {"name": "adam", "learning_rate": 0.001, "b1": 0.9},
        "schedule": None,
        "dtype": "float32",
        "devices": 1,
    }
    for dotted, value in changes.items():
        rc._set(out, dotted.replace("__", "."), value)
    return out


def test_equal_configs_have_no_diff():
    assert rc.config_diff(SAVED, _current()) == []  # tuples == lists, 1e-3 == 0.001
    assert rc.config_diff({"lr": 1}, {"lr": 1.0}) == []
    assert rc.config_diff({"x": math.nan}, {"x": math.nan}) == []
    assert rc.config_diff({"flag": True}, {"flag": 1}) == [("flag", True, 1)]


def test_each_differing_field_is_named_with_old_and_new():
    cur = _current(optimizer__name="sgd", optimizer__learning_rate=0.01, devices=2)
    del cur["optimizer"]["b1"]
    cur["weight_decay"] = 0.0
    diffs = rc.config_diff(SAVED, cur)
    assert diffs == [
        ("devices", 1, 2),
        ("optimizer.b1", 0.9, rc.MISSING),
        ("optimizer.learning_rate", 0.001, 0.01),
        ("optimizer.name", "adam", "sgd"),
        ("weight_decay", rc.MISSING, 0.0),
    ]
    with pytest.raises(rc.ConfigMismatchError) as err:
        rc.check_config(SAVED, cur, source="runs/a/ckpt_00000004.npz")
    msg = str(err.value)
    assert isinstance(err.value, ValueError) and err.value.diffs == diffs
    assert msg.startswith("cannot resume from runs/a/ckpt_00000004.npz: ")
    for part in (
        "optimizer.name: 'adam' -> 'sgd'",
        "optimizer.learning_rate: 0.001 -> 0.01",
        "optimizer.b1: 0.9 -> <absent>",
        "weight_decay: <absent> -> 0.0",
        "(devices=2 optimizer.learning_rate=0.01 optimizer.name=sgd)",
    ):
        assert part in msg, part
    assert "\n" not in msg


def test_ignore_skips_fields_and_their_children():
    cur = _current(model__spec=["mlp", {"hidden": [64], "activation": "tanh"}], devices=8)
    assert [d[0] for d in rc.config_diff(SAVED, cur)] == ["devices", "model.spec"]
    assert rc.config_diff(SAVED, cur, ignore=("devices", "model")) == []
    assert rc.config_diff({"ab": 1}, {"ab": 2}, ignore=("a",)) == [("ab", 1, 2)]  # not a prefix


def test_parse_overrides():
    got = rc.parse_overrides(["lr=1e-4", "name = sgd", "hidden=[64,32]", "on=true", "x=None"])
    assert got == {"lr": 1e-4, "name": "sgd", "hidden": [64, 32], "on": True, "x": None}
    for bad in ("lr", "=3", "  =x"):
        with pytest.raises(ValueError, match="expected FIELD=VALUE"):
            rc.parse_overrides([bad])


def test_apply_overrides_then_the_check_passes():
    cur = _current(optimizer__learning_rate=1e-4)
    with pytest.raises(rc.ConfigMismatchError, match="optimizer.learning_rate"):
        rc.check_config(SAVED, cur)
    wanted = rc.apply_overrides(SAVED, rc.parse_overrides(["optimizer.learning_rate=1e-4"]))
    rc.check_config(wanted, cur)
    assert SAVED["optimizer"]["learning_rate"] == 1e-3  # the input is not modified


def test_apply_overrides_types_and_unknown_fields():
    out = rc.apply_overrides(SAVED, {"devices": 4, "optimizer.learning_rate": 1})
    assert out["devices"] == 4 and isinstance(out["optimizer"]["learning_rate"], float)
    assert rc.apply_overrides(SAVED, {"optimizer.b1": "0.95"})["optimizer"]["b1"] == 0.95
    assert rc.apply_overrides(SAVED, {"schedule": "cosine"})["schedule"] == "cosine"
    with pytest.raises(ValueError) as err:
        rc.apply_overrides(SAVED, {"lr": 1e-4})
    assert str(err.value).startswith("override lr: no such field; valid fields: devices, dtype, ")
    assert "optimizer.learning_rate" in str(err.value)
    for field, value in (("devices", 1.5), ("devices", "x"), ("dtype", 3), ("devices", True)):
        with pytest.raises(ValueError, match=f"override {field}=.*must be of type"):
            rc.apply_overrides(SAVED, {field: value})
