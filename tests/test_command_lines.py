"""Command lines of every entry point: --help without TensorFlow, one spelling per flag,
no abbreviations, typed values, presets resolved from what was given, and one-line
errors with exit status 2 for bad values, before anything is loaded or trained."""

import os
import subprocess
import sys
import zipfile

import pytest

from mnist_tutorial import config as tutorial_config
from mnist_tutorial import convolutional as tutorial
from reproduce import all as all_figures
from reproduce import appendix_c, cli, figure2, figure3, figure4, figure5, report, sensitivity
from tfovp import convert

pytestmark = pytest.mark.integration

ENTRY_POINTS = [
    "reproduce.figure2",
    "reproduce.figure3",
    "reproduce.figure4",
    "reproduce.figure5",
    "reproduce.all",
    "reproduce.sensitivity",
    "reproduce.appendix_c",
    "reproduce.report",
    "mnist_tutorial.convolutional",
    "tfovp.convert",
    "tfovp.datasets",
]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_help_of_every_entry_point_answers_without_tensorflow():
    script = f"""
import importlib.abc, runpy, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tensorflow_datasets"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Refuse())
for module in {ENTRY_POINTS!r}:
    sys.argv = [module, "--help"]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        assert stop.code == 0, (module, stop.code)
    else:
        raise AssertionError(module + " --help did not exit")
    print("ANSWERED", module)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for module in ENTRY_POINTS:
        assert f"ANSWERED {module}" in done.stdout
        assert f"usage: python -m {module}" in done.stdout


def test_import_tfovp_is_light():
    script = (
        "import sys, tfovp; heavy = {'matplotlib', 'pandas', 'tensorflow_datasets', 'tensorflow', 'keras'}"
        " & set(sys.modules); assert not heavy, heavy; print(tfovp.__version__)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_keras_objects_register_when_keras_comes_first(tmp_path):
    # `import keras` then `import tfovp`, as the README does: a saved tfovp layer loads in
    # a fresh process without custom_objects.
    import keras

    import tfovp

    path = tmp_path / "net.keras"
    keras.Sequential([keras.Input((3,)), tfovp.DeepLinear(1, depth=2)]).save(path)
    script = f"import keras, tfovp; print(type(keras.models.load_model({str(path)!r}).layers[0]).__name__)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("DeepLinear"), done.stderr[-2000:]


def _error(main, argv, capsys):
    """The exit status and the error text of a command line that must fail."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return stopped.value.code, err


@pytest.mark.parametrize(
    "main, argv, message",
    [
        (figure5.main, ["--panels", "middle"], "--panels middle: expected left, right or left,right"),
        (figure3.main, ["--step", "50"], "unrecognized arguments: --step"),  # no abbreviations
        (figure3.main, ["--steps", "1e12"], "expected an integer, got '1e12'"),
        (figure3.main, ["--steps", "1000000000000"], "--steps 1000000000000: expected an integer from 1 to"),
        (figure3.main, ["--steps", "0"], "--steps 0: expected an integer from 1"),
        (figure3.main, ["--seed", "-1"], "--seed -1: expected an integer >= 0"),
        (figure3.main, ["--lrs", "0.1,-1"], "--lrs 0.1,-1: -1 not allowed; expected finite numbers > 0"),
        (figure3.main, ["--losses", "0.5"], "--losses 0.5: 0.5 not allowed"),
        (figure3.main, ["--depths", "1.5"], "expected comma-separated integers"),
        (figure3.main, ["--preprocessing", "zscore"], "--preprocessing: invalid choice"),
        (figure3.main, ["--level", "1.5"], "--level 1.5: expected a number in (0, 1)"),
        (figure3.main, ["--data-dir", "/nonexistent"], "--data-dir /nonexistent: no such folder"),
        (figure2.main, ["--depths", "1,2"], "--depths 1,2: 1 not allowed; expected integers >= 2"),
        (figure4.main, ["--loss", "4"], "unrecognized arguments: --loss"),  # one spelling: --losses
        (figure5.main, ["--mnist-steps", "-5"], "--mnist-steps -5: expected an integer >= 0"),
        (figure5.main, ["--mnist-self-test"], "unrecognized arguments"),  # one spelling: --self-test
        (sensitivity.main, ["--figures", "7"], "--figures 7: 7 not allowed; expected 3 and/or 5"),
        (sensitivity.main, ["--seed", "1"], "unrecognized arguments: --seed"),  # one spelling: --seeds
        (sensitivity.main, ["--preprocessings", "standardize,zscore"], "zscore not allowed"),
        (appendix_c.main, ["--steps", "-3"], "--steps -3: expected an integer from 1"),
        (appendix_c.main, ["--stds", "0.1,0"], "--stds 0.1,0: 0 not allowed"),
        (all_figures.main, ["--steps", "-1"], "--steps -1: expected an integer from 1"),
        (tutorial.main, ["--steps", "-5"], "--steps -5: expected an integer >= 1"),
        (tutorial.main, ["--base-lr", "-1"], "--base-lr -1: expected a number > 0"),
        (tutorial.main, ["--overparam-init-std", "-1"], "--overparam-init-std -1: expected a number > 0"),
        (tutorial.main, ["--l2-on", "both"], "--l2-on: invalid choice"),
        (tutorial.main, ["--verbose"], "unrecognized arguments: --verbose"),  # --quiet is the one switch
        (report.main, ["--out", "/nonexistent"], "--out /nonexistent: no such folder"),
    ],
)
def test_bad_values_end_with_one_line_and_status_2(main, argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TFOVP_DATA_DIR", str(tmp_path))  # a data folder that exists must not hide --data-dir's
    code, err = _error(main, argv, capsys)
    assert code == 2 and message in err


def test_out_that_cannot_hold_the_results(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert _error(figure3.main, ["--out", str(afile)], capsys) == (
        2,
        f"python -m reproduce.figure3: error: --out {afile}: is a file, not a folder (see --help)",
    )
    code, err = _error(figure3.main, ["--out", "/proc/tfovp-test"], capsys)  # unwritable even for root
    assert code == 2 and "--out /proc/tfovp-test: cannot write there" in err


def test_presets_apply_only_to_what_was_not_given():
    config, out = cli.parse(figure3.Config, ["--quick", "--steps", "50", "--lrs", "0.01"], "p", "")
    assert (config.steps, config.lrs, out) == (50, (0.01,), "runs/quick")  # never results/, nor a real run
    config, _ = cli.parse(figure3.Config, ["--quick"], "p", "")
    assert (config.steps, config.lrs) == (300, (1e-3, 1e-2, 1e-1))
    config, _ = cli.parse(figure5.Config, ["--quick", "--panels", "right"], "p", "")
    assert (config.steps, config.panels) == (600, "right")
    config, _ = cli.parse(figure3.Config, ["--depths", "1,3", "--losses", "4"], "p", "")
    assert config.depths == (1, 3) and all(isinstance(n, int) for n in config.depths) and config.losses == (4.0,)


def test_all_passes_steps_to_every_figure_however_it_is_spelled():
    config, _ = cli.parse(all_figures.Config, ["--steps=50"], "p", "")
    assert {name: c.steps for name, c in all_figures.configs(config).items()} == dict.fromkeys(
        ["figure3", "figure2", "figure4", "figure5", "figure3-abalone"], 50
    )
    default, _ = cli.parse(all_figures.Config, [], "p", "")
    steps = {name: c.steps for name, c in all_figures.configs(default).items()}
    assert steps["figure5"] == 100_000 and steps["figure3"] == 20_000
    quick, _ = cli.parse(all_figures.Config, ["--quick"], "p", "")
    configs = all_figures.configs(quick)
    assert configs["figure5"].panels == "left" and configs["figure5"].steps == 600 and configs["figure2"].steps == 300


def test_tutorial_keeps_its_own_flags_and_accepts_kebab_case():
    assert tutorial.parse_args(["--self_test", "--use_fp16"]) == tutorial.parse_args(["--self-test", "--use-fp16"])
    assert tutorial.parse_args(["--self_test"]).self_test and tutorial.parse_args(["--quiet"]).quiet


def test_every_flag_has_a_help_line_with_allowed_values(capsys):
    import dataclasses

    for config in (
        figure2.Config,
        figure3.Config,
        figure4.Config,
        figure5.Config,
        sensitivity.Config,
        appendix_c.Config,
        all_figures.Config,
        tutorial_config.Config,
    ):
        for field in dataclasses.fields(config):
            assert len(field.metadata.get("help", "")) > 10, (config.__module__, field.name)
    with pytest.raises(SystemExit):
        figure3.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "--dataset {ethanol,abalone,abalone8}" in text and "{standardize,standardize-minmax,minmax,maxabs,none}" in text
    )
    assert "smoke run in seconds: --steps 300 --lrs 0.001,0.01,0.1 --rho 2 (flags given win)" in text


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        (b"not a model", "not a .keras model file (not a zip archive)"),
        ("truncated", "not a .keras model file (not a zip archive)"),
        ("junk-zip", "cannot be loaded as a Keras model"),
    ],
)
def test_convert_names_the_bad_file(content, message, tmp_path, capsys):
    source = tmp_path / "in.keras"
    if content == "truncated":
        with zipfile.ZipFile(source, "w") as archive:
            archive.writestr("config.json", "{}" * 1000)
        source.write_bytes(source.read_bytes()[:100])
    elif content == "junk-zip":
        with zipfile.ZipFile(source, "w") as archive:
            archive.writestr("hello.txt", "not a model")
    elif content is not None:
        source.write_bytes(content)
    code, err = _error(convert.main, ["collapse", str(source), str(tmp_path / "out.keras")], capsys)
    assert code == 2 and str(source) in err and message in err


def test_convert_inits_match_the_library():
    from tfovp import factoring

    assert convert.INITS == factoring.INITS


@pytest.mark.parametrize(
    "kind, reason",
    [("lambda", "deserialization of a `Lambda` layer"), ("function", "Could not locate function 'side_effect'")],
)
def test_convert_refuses_saved_code_without_running_it(kind, reason, tmp_path, capsys):
    import keras

    marker = tmp_path / "ran"

    def side_effect(x):
        marker.write_text("the saved code ran")
        return x * 2

    # A Python lambda is saved as bytecode (with the marker's path as a constant).
    code = f"lambda x: __import__('pathlib').Path({str(marker)!r}).write_text('the saved code ran') and x * 2"
    function = eval(code) if kind == "lambda" else side_effect
    model = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(function), keras.layers.Dense(2)])
    model.save(tmp_path / "code.keras")
    marker.unlink(missing_ok=True)
    code, err = _error(convert.main, ["collapse", str(tmp_path / "code.keras"), str(tmp_path / "out.keras")], capsys)
    assert code == 2 and "cannot be loaded as a Keras model" in err and reason in err
    assert not marker.exists() and not (tmp_path / "out.keras").exists()
