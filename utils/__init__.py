"""Image-Restore shared code: data, damage, metric, models, losses, training, pipeline, submission.

`import utils` gives the public names of every module; each concern lives in its own module. The modules are
imported on first use of one of their names (PEP 562), so a command that only restores images (restore.py, the
app) does not pay for the training code's imports (timm's model zoo, albumentations, accelerate, matplotlib):
`python -c "import utils"` takes well under a second; `utils.Restorer` loads the inference modules only.
"""
import importlib as _importlib
from importlib.util import find_spec as _find_spec
import os as _os

# no network at run time: albumentations asks PyPI for a newer version when it is imported unless told not to
_os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

# module -> the public names it gives `utils`
_EXPORTS = {
    "files": ["atomic_path", "save_json", "write_bytes_atomic"],
    "images": ["IMAGE_EXTENSIONS", "IMAGE_SIZE", "DataError", "gray_of", "read_image", "write_png"],
    "paths": ["project_dir", "project_path", "project_root", "smoke_default"],
    "runtime": ["autocast", "default_amp", "pick_device"],
    "damage": ["Damage", "DamageConfig", "apply_damage", "sample_damage"],
    "datasets": ["InpaintDataset", "JoinedDataset", "PhotoCropDataset", "ProvidedPairsDataset",
                 "SyntheticDamageDataset", "check_images", "load_test_table", "load_train_table", "photo_list",
                 "prepare_run", "resolve_data_dir", "split_indices", "train_photo_paths", "train_val_datasets"],
    "metric": ["score_arrays", "score_folder", "score_image", "summarize"],
    "sample_data": ["build_sample_dataset", "builtin_photo_paths", "ensure_dataset"],
    "submission": ["SubmissionError", "validate_submission", "write_submission_zip", "zip_folder"],
    "color": ["compose_rgb", "rgb_to_cbcr", "ycbcr_to_rgb"],
    "mask_refine": ["RefineConfig", "mask_stats", "refine_mask"],
    "hue": ["HueConfig", "choose_hue_strength", "hue_prior", "match_hue", "visible_change"],
    "natural": ["FadeConfig", "confidently_wrong", "fade_pale", "scale_chroma"],
    "guidance": ["HintError", "apply_hints", "check_hints", "parse_hint", "reference_prior"],
    "models": ["ColorizationNet", "InpaintNet", "MaskNet", "PatchDiscriminator", "PretrainedWeightsError",
               "build_model", "create_encoder"],
    "losses": ["ColorLoss", "InpaintLoss", "MaskLoss", "PerceptualLoss", "choose_loss"],
    "checkpoints": ["ChecksumError", "default_weights", "export_weights", "find_weights", "load_model",
                    "read_config", "save_model", "update_inference_config", "verify_checksums", "write_checksums"],
    "baselines": ["gray_copy", "prefill", "telea"],
    "pipeline": ["Restoration", "Restorer", "colorize", "colorize_chroma", "inpaint", "predict_mask",
                 "predict_masks"],
    "batch_restore": ["BatchReport", "NothingRestoredError", "make_submission", "restore_files"],
    "training": ["compare_options", "fit"],
    "distributed": ["train_stage"],
    "stages": ["ColorStage", "InpaintStage", "MaskStage"],
    "evaluation": ["calibrate_chroma_gain", "median_ms", "stage_summary", "validate_color", "validate_inpaint",
                   "validate_mask"],
    "plots": ["overlay_mask", "plot_history", "plot_hole_colour", "show_grid", "worst_and_best"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:       # a module itself, e.g. `utils.hue.BINS` after a plain `import utils`
        if _find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'utils' has no attribute {name!r}")
        return _importlib.import_module(f".{name}", __name__)
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value          # imported once; later lookups do not come here
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
