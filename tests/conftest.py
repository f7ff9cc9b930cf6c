import contextlib
import io
import os
import runpy
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Tests default to CPU, as in timm; IMAGE_RESTORE_TEST_CUDA=1 keeps the GPUs visible for the CUDA tests
# (`IMAGE_RESTORE_TEST_CUDA=1 pytest tests/test_cuda.py` on a GPU machine).
if os.environ.get("IMAGE_RESTORE_TEST_CUDA") != "1":
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# With pytest-xdist (`make test`: two workers on two cores) each worker, and every process it starts (notebook
# kernels, restore.py, the app), computes on one thread: two workers of two threads each oversubscribed the cores
if os.environ.get("PYTEST_XDIST_WORKER"):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


requires_cuda = pytest.mark.skipif(not cuda_available(), reason="needs CUDA: run on a GPU machine with "
                                   "IMAGE_RESTORE_TEST_CUDA=1 (the tests hide GPUs otherwise)")


@dataclass
class CliRun:
    """What a command printed and returned, as subprocess.run(..., capture_output=True, text=True) gives it."""
    returncode: int
    stdout: str
    stderr: str


def run_cli(script, *args) -> CliRun:
    """Run one of the project's command-line scripts (restore.py, benchmark.py, tools/*.py) as `python script
    args...` would, inside this process: its `main(argv)` with stdout and stderr captured, an argparse exit taken
    as the exit code, and warnings printed to stderr under Python's default filters, as a fresh interpreter would.
    It saves each call the 5-10 s of interpreter start-up and imports on 2 cores; the tests that need a real
    process (signals, imports, the network) still start one."""
    main = runpy.run_path(str(ROOT / script), run_name="cli_under_test")["main"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.resetwarnings()                 # the interpreter's defaults: DeprecationWarning only in __main__
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:                 # argparse errors (2) and --help (0)
            code = e.code if isinstance(e.code, int) or e.code is None else 1
            if isinstance(e.code, str):
                print(e.code, file=err)
    return CliRun(code or 0, out.getvalue(), err.getvalue())


@pytest.fixture
def no_project_env(monkeypatch):
    """None of the project's IMAGE_RESTORE_* variables set for this test, as on a user's fresh shell."""
    for var in [k for k in os.environ if k.startswith("IMAGE_RESTORE_")]:
        monkeypatch.delenv(var)


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory):
    """A tiny dataset in the competition layout built from the bundled photos."""
    import utils

    out = tmp_path_factory.mktemp("data")
    utils.build_sample_dataset(out, n_train=12, n_test=4, seed=1, overwrite=True)
    return out


def make_tiny_weights(out_dir, size: int = 128):
    """Untrained (random-init) checkpoints of the three stages, as notebooks 02-04 would write them."""
    import torch

    import utils
    from utils.models import model_config

    torch.manual_seed(0)
    nets = {"mask": ("MaskNet", utils.MaskNet()), "color": ("ColorizationNet", utils.ColorizationNet()),
            "inpaint": ("InpaintNet", utils.InpaintNet())}
    for stem, (arch, net) in nets.items():
        inference = {"size": size}
        if stem == "mask":
            inference["refine"] = utils.RefineConfig().to_dict()
        utils.save_model(net, {**model_config(arch), "stage": stem, "inference": inference}, out_dir / stem)
    return out_dir


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    return make_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def own_data(sample_data, tmp_path_factory):
    """The sample dataset's images in another folder, without its manifest: not the sample dataset (as the
    competition's data, or a copy of a dataset moved elsewhere)."""
    import shutil

    out = tmp_path_factory.mktemp("own") / "data"
    shutil.copytree(sample_data, out)
    (out / "manifest.csv").unlink()
    return out


# ---------------------------------------------------------------- markers (registered in pyproject.toml)
# `make test` runs every test; `make test-fast` only the unit tests: -m "not slow and not browser and not notebook
# and not distributed" (see docs/testing.md). Markers are given here, by file and by test, so that one table
# says which tests are slow; tests/test_structure.py checks that every test it names exists.
FILE_MARKERS = {
    "test_distributed.py": ("distributed", "slow"),       # gloo processes through accelerate
    "test_notebooks.py": ("notebook", "slow"),            # notebooks executed by tools/run_notebooks.py
    "test_training_notebooks.py": ("notebook", "slow"),   # notebooks 02-04 executed in smoke mode
    "test_jupyter_browser.py": ("notebook", "browser", "slow"),   # Jupyter Lab driven in Chromium
    "test_app.py": ("slow",),                             # the app in a subprocess
}
# a test using one of these fixtures drives Chromium (installed by `make browser`)
BROWSER_FIXTURES = ("browser",)
# unit tests that take 6 s or more (all parametrizations together) on 2 cores, their fixtures included (the tiny
# weights take 9 s to build): real restore.py / app / tools processes, short training runs, ONNX exports, the
# pipeline end to end; left out of `make test-fast`
SLOW_TESTS = {
    "test_bad_input.py::test_16_bit_png_is_scaled_not_clipped",
    "test_bad_input.py::test_a_folder_named_like_an_output_file_is_refused_before_any_work",
    "test_bad_input.py::test_app_batch_with_two_members_of_one_name_reports_the_second",
    "test_bad_input.py::test_app_under_concurrent_restores_and_a_zip_bomb",
    "test_bad_input.py::test_bad_output_paths_fail_before_any_work",
    "test_bad_input.py::test_huge_image_is_skipped_by_name_and_the_others_restored",
    "test_bad_input.py::test_masks_folder_equal_to_output_folder_is_refused",
    "test_bad_input.py::test_no_network_on_import",
    "test_bad_input.py::test_restore_into_its_input_folder_is_refused",
    "test_bad_input.py::test_resume_with_other_settings_is_refused",
    "test_bad_input.py::test_two_inputs_with_one_output_name_are_refused",
    "test_batch_restore.py::test_a_mask_that_cannot_be_written_fails_that_image_by_its_mask_path",
    "test_batch_restore.py::test_an_interrupted_batch_leaves_no_temporary_file_and_its_report_says_how_far_it_got",
    "test_batch_restore.py::test_make_submission_names_the_test_input_it_could_not_read",
    "test_batch_restore.py::test_make_submission_writes_a_validated_zip_of_the_test_inputs",
    "test_benchmark.py::test_baseline_training_resumes_from_its_state",
    "test_benchmark.py::test_benchmark_prints_scores_and_timings",
    "test_benchmark.py::test_benchmark_trains_then_reloads_the_competition_baseline",
    "test_benchmark.py::test_competition_baseline_shapes_and_learning",
    "test_colour.py::test_colour_setting_reaches_the_restorer",
    "test_colour.py::test_hue_histogram_loss_is_the_metric_term_and_falls_on_a_fixed_batch",
    "test_colour.py::test_post_process_keeps_the_luminance_exactly_outside_and_inside_the_hole",
    "test_data.py::test_photo_crops_are_drawn_afresh_each_epoch",
    "test_data.py::test_train_source_provided_and_both",
    "test_hole_masks.py::test_a_given_hole_of_any_shape_is_filled_and_kept_at_the_images_size",
    "test_hole_masks.py::test_a_given_hole_replaces_the_detected_one_or_adds_to_it",
    "test_hole_masks.py::test_restore_cli_hole_masks",
    "test_inpaint.py::test_generator_loss_falls_on_a_fixed_batch",
    "test_inpaint.py::test_the_designs_l1_gan_loss_stays_available",
    "test_models.py::test_checkpoint_round_trip_and_resume",
    "test_models.py::test_few_steps_lower_the_loss_on_a_fixed_batch",
    "test_models.py::test_no_loader_worker_outlives_its_epoch",
    "test_models.py::test_offline_lite_weights_are_imagenet_weights",
    "test_models.py::test_shapes_on_cpu",
    "test_models.py::test_stage_starts_from_trained_weights",
    "test_onnx.py::test_app_onnx_backend",
    "test_onnx.py::test_corrupt_onnx_file_is_refused",
    "test_onnx.py::test_networks_match_pytorch_within_tolerance",
    "test_onnx.py::test_restorations_match_pytorch",
    "test_onnx.py::test_restore_cli_onnx_backend",
    "test_onnx.py::test_stale_export_is_redone_when_the_weights_change",
    "test_paths.py::test_command_line_paths_are_taken_from_the_working_directory",
    "test_pipeline.py::test_pipeline_end_to_end_on_tiny_model",
    "test_pipeline.py::test_restore_images_any_size_and_mode_batched",
    "test_pipeline.py::test_restore_takes_any_uint8_image_and_refuses_other_types_clearly",
    "test_restore_cli.py::test_an_interrupted_restore_leaves_no_temporary_file_and_says_how_far_it_got",
    "test_restore_cli.py::test_restore_cli_writes_a_phone_photo_upright",
    "test_restore_cli.py::test_restore_folder_with_corrupt_and_odd_files",
    "test_restore_cli.py::test_restore_with_only_unreadable_inputs_writes_no_zip_and_lists_them",
    "test_resume_settings.py::test_an_older_checkpoint_without_the_data_settings_resumes",
    "test_resume_settings.py::test_resume_on_other_data_or_another_source_is_refused",
    "test_resume_settings.py::test_train_cli_resume_with_other_settings_is_one_line_and_exit_code_2",
    "test_shipped_weights.py::test_shipped_weights_beat_the_telea_floor",
    "test_train_stage.py::test_one_process_builds_with_make_stage_and_trains",
}


@pytest.hookimpl(tryfirst=True)        # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.path.name
        for marker in FILE_MARKERS.get(name, ()):
            item.add_marker(marker)
        if set(BROWSER_FIXTURES) & set(getattr(item, "fixturenames", ())):
            item.add_marker("browser")
        if f"{name}::{getattr(item, 'originalname', item.name)}" in SLOW_TESTS:
            item.add_marker("slow")
