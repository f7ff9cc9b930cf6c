"""The stage configs (utils.train_config): one home for every training setting. The notebooks, tools/train.py and
the launcher build the same config from the same settings; no default is typed anywhere else (the command line's
defaults, the notebooks' parameters, the stages, networks and losses take them from the configs); smoke and sample
runs are named presets; a bad field or value is an error naming it."""
import contextlib
import dataclasses
import json
import re
import runpy
from pathlib import Path

import pytest

import utils
from utils.core.train_config import CONFIGS, PRESETS, ConfigError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = {"mask": "02_train_mask", "color": "03_train_colorization", "inpaint": "04_train_inpaint"}


def train_cli():
    """tools/train.py's functions (tools/ is not a package)."""
    return runpy.run_path(str(ROOT / "tools" / "train.py"), run_name="train_under_test")


def cli_config(*argv):
    cli = train_cli()
    return cli["config_from_args"](cli["parser"]().parse_args([str(a) for a in argv]))


def notebook_cells(stage: str) -> tuple[str, str]:
    """The sources of a training notebook's parameters cell and of the cell after it (which builds the config)."""
    nb = json.loads((ROOT / "notebooks" / f"{NOTEBOOK[stage]}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    return "".join(code[0]["source"]), "".join(code[1]["source"])


def notebook_config(stage: str, **injected):
    """The config that a training notebook builds, with papermill's injected parameters (as tools/run_notebooks.py
    passes them) run after its parameters cell."""
    params, build = notebook_cells(stage)
    namespace: dict = {}
    exec(params, namespace)
    namespace.update(injected)
    exec(build, namespace)
    return namespace["config"]


@pytest.mark.parametrize("stage", list(CONFIGS))
def test_notebook_command_line_and_launcher_build_the_same_config(stage, sample_data, no_project_env):
    cls = CONFIGS[stage]
    assert notebook_config(stage) == cli_config("--stage", stage) == cls()           # the measured defaults
    settings = {"epochs": 3, "lr": 0.002, "crop_scale": [1.0, 2.0], "train_source": "photos", "amp": "off"}
    flags = ["--epochs", "3", "--lr", "0.002", "--crop-scale", "1", "2", "--train-source", "photos", "--amp", "off"]
    from_notebook = notebook_config(stage, preset="smoke", settings=settings)
    assert from_notebook == cli_config("--stage", stage, "--preset", "smoke", *flags) == cls.preset("smoke", **settings)
    assert from_notebook.epochs == 3 and from_notebook.batch_size == 2          # the settings on top of the preset
    # the launcher builds the stage of the config it is given, unchanged
    config = cls.preset("smoke", pretrained="none", val_count=2)
    stage_, train_ds, _ = utils.distributed.build(config, "cpu", sample_data)
    assert stage_.config == config and stage_.name == stage and len(train_ds) > 0


def test_no_default_is_typed_twice():
    """The command line's flags are generated from the configs' fields with no default of their own; the
    notebooks' parameters cells set no config field; the stages, networks, losses and data sets take the
    configs' defaults."""
    import inspect

    cli = train_cli()
    fields = cli["config_fields"]()
    assert set(fields) == {f.name for c in CONFIGS.values() for f in dataclasses.fields(c)
                           if f.metadata["group"] != "comparison"}
    for action in cli["parser"]()._actions:
        if action.dest in fields:
            assert action.default == "==SUPPRESS==", action.dest          # the config's default applies
            for _, f in fields[action.dest]:
                assert repr(f.default) in action.help, (action.dest, action.help)
    for stage, cls in CONFIGS.items():
        params, _ = notebook_cells(stage)
        assigned = set(re.findall(r"^(\w+) *=", params, re.M))
        assert assigned == {"data_dir", "ckpt_dir", "preset", "settings", "device", "num_processes"}, assigned
        assert not assigned & {f.name for f in dataclasses.fields(cls)}
        assert utils.stages.STAGE_CLASSES[stage]().config == cls()      # the stage's defaults are its config's
    loss_defaults = inspect.signature(utils.losses.InpaintLoss).parameters
    assert loss_defaults["hole_weight"].default == CONFIGS["inpaint"]().hole_weight
    assert inspect.signature(utils.losses.ColorLoss).parameters["kind"].default == CONFIGS["color"]().loss == "classify"
    assert inspect.signature(utils.losses.MaskLoss).parameters["kind"].default == CONFIGS["mask"]().loss
    assert utils.losses.MEASURED_DEFAULT == {stage: cls().loss for stage, cls in CONFIGS.items()}
    head = inspect.signature(utils.ColorizationNet).parameters["head"]
    assert head.default is inspect.Parameter.empty                  # the stage derives it from the config's loss
    assert utils.ColorStage(pretrained="none").net.head == "classes"
    crop = inspect.signature(utils.train_val_datasets).parameters["crop_scale"].default
    assert crop == CONFIGS["mask"]().crop_scale


def test_presets_are_what_the_smoke_and_sample_runs_use():
    assert PRESETS == ("default", "sample", "smoke")
    for cls in CONFIGS.values():
        assert cls.preset("default") == cls()
        smoke = cls.preset("smoke")
        assert (smoke.epochs, smoke.steps_per_epoch, smoke.batch_size, smoke.image_size) == (1, 2, 2, 128)
        assert smoke.compare_options == (cls.design_loss, cls().loss)      # the design's loss against the default
        sample = cls.preset("sample")
        assert (sample.epochs, sample.steps_per_epoch, sample.compare_losses) == (2, 6, False)
    assert CONFIGS["inpaint"].preset("smoke").compare_blocks == ("ffc", "gated")
    with pytest.raises(ConfigError, match="unknown preset 'quick'; one of default, sample, smoke"):
        CONFIGS["mask"].preset("quick")


def test_bad_fields_and_values_are_named():
    mask, inpaint = CONFIGS["mask"], CONFIGS["inpaint"]
    with pytest.raises(ConfigError, match=r"MaskConfig: unknown field epoch \(did you mean epochs\?\); its fields: "):
        mask(epoch=3)
    with pytest.raises(ConfigError, match=r"unknown field block \(a field of the inpaint stage\)"):
        mask().replace(block="ffc")
    with pytest.raises(ConfigError, match=r"MaskConfig\.lr: expected float, got 'fast' \(str\)"):
        mask(lr="fast")
    with pytest.raises(ConfigError, match=r"InpaintConfig\.loss: 'classify' is not one of l1\+gan, "):
        inpaint(loss="classify")
    with pytest.raises(ConfigError, match=r"MaskConfig\.crop_scale: expected 2 values, got 3"):
        mask(crop_scale=[1, 2, 3])
    with pytest.raises(ConfigError, match=r"MaskConfig\.batch_size: 0 is below its minimum, 1"):
        mask(batch_size=0)
    with pytest.raises(ConfigError, match=r"MaskConfig\.compare_options: 'l1\+gan' is not one of"):
        mask(compare_options=["l1+gan"])
    assert mask(lr=1, crop_scale=[1, 2]).to_dict()["crop_scale"] == [1.0, 2.0]     # ints as floats, lists as tuples


def test_a_config_round_trips_through_json_and_shows_what_it_changed():
    cls = CONFIGS["color"]
    config = cls.preset("smoke", rebalance_lambda=1.0)
    assert cls.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.warns(utils.configs.UnknownConfigKeysWarning, match=r"unknown keys \['retired'\]"):
        assert cls.from_dict({**config.to_dict(), "retired": 1}) == config
    assert config.changes()["rebalance_lambda"] == 1.0 and "lr" not in config.changes()
    page = config._repr_html_()
    assert "<code>rebalance_lambda</code>" in page and "<b>1.0</b> (default 0.5)" in page
    assert "optimiser and schedule:" in str(config) and "epochs = 1  (default 6)" in str(config)


def test_the_command_line_refuses_a_flag_of_another_stage(capsys):
    cli = train_cli()
    with pytest.raises(SystemExit):
        cli["parse"](["--stage", "mask", "--block", "gated"])
    assert "--block: not a setting of the mask stage (only of inpaint)" in capsys.readouterr().err


def test_the_shipped_recipe_sets_config_fields():
    """tools/train_shipped.sh builds the training notebooks' configs through -p values: each names a config field,
    with a value the config takes."""
    runner = runpy.run_path(str(ROOT / "tools" / "run_notebooks.py"), run_name="runner_under_test")
    script = (ROOT / "tools" / "train_shipped.sh").read_text()
    params = re.findall(r"-p (\w+)=([^\s)]+)", script)
    assert len(params) > 10
    for key, value in params:
        owners = [c for c in CONFIGS.values() if key in {f.name for f in dataclasses.fields(c)}]
        assert owners, f"-p {key}: not a field of any stage's config"
        if "$" not in value:                    # (the shell's variables: paths and the epoch count)
            taken = []
            for cls in owners:                  # (the loss names differ by stage)
                with contextlib.suppress(ConfigError):
                    taken.append(cls(**{key: runner["parse_value"](value)}))
            assert taken, f"-p {key}={value}: no stage's config takes it"
    lines = script.replace("\\\n", " ").splitlines()
    commands = [line.split("tools/train.py", 1)[1] for line in lines if "tools/train.py" in line]
    assert commands                             # the mask net's fine-tune
    for command in commands:                    # its flags parse into the stage's config
        argv = [re.sub(r"\$(\w+)", lambda m: m.group(1).lower(), a.strip('"')) for a in command.split()]
        config = cli_config(*argv)             # ($DATA -> data: the shell's variables as plain folder names)
        assert config.stage == "mask" and config.stroke_share > 0


def test_stroke_share_is_a_data_setting_from_the_flag_to_the_damage(sample_data, no_project_env):
    config = cli_config("--stage", "mask", "--preset", "smoke", "--stroke-share", "0.3")
    assert config.stroke_share == 0.3 and CONFIGS["mask"]().stroke_share == 0.0       # off by default
    _, train_ds, _ = utils.distributed.stage_data(config.replace(val_count=2), sample_data, "cpu")
    assert train_ds.damage.stroke_share == 0.3                                           # the data set's damage
    with pytest.raises(ValueError, match="stroke_share"):
        utils.distributed.stage_data(config.replace(stroke_share=0.95), sample_data, "cpu")   # with 0.1 train-style
