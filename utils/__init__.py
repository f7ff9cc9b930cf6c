"""Image-Restore shared code: data, damage, metric, models, losses, training, pipeline, submission.

`import utils` gives the public names of every module; each concern lives in its own module.
"""
import os as _os

# no network at run time: albumentations asks PyPI for a newer version when it is imported unless told not to
_os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from .files import atomic_path, save_json, write_bytes_atomic  # noqa: E402
from .images import IMAGE_EXTENSIONS, IMAGE_SIZE, DataError, gray_of, read_image, write_png
from .paths import project_dir, project_path, project_root, smoke_default
from .runtime import autocast, default_amp, pick_device
from .damage import Damage, DamageConfig, apply_damage, sample_damage
from .datasets import (InpaintDataset, JoinedDataset, PhotoCropDataset, ProvidedPairsDataset, SyntheticDamageDataset,
                       check_images, load_test_table, load_train_table, photo_list, prepare_run, resolve_data_dir,
                       split_indices, train_photo_paths, train_val_datasets)
from .metric import score_arrays, score_folder, score_image, summarize
from .sample_data import build_sample_dataset, builtin_photo_paths, ensure_dataset
from .submission import SubmissionError, validate_submission, write_submission_zip, zip_folder
from .color import compose_rgb, rgb_to_cbcr, ycbcr_to_rgb
from .mask_refine import RefineConfig, mask_stats, refine_mask
from .hue import HueConfig, choose_hue_strength, hue_prior, match_hue, visible_change
from .models import (ColorizationNet, InpaintNet, MaskNet, PatchDiscriminator, PretrainedWeightsError,
                     build_model, create_encoder)
from .losses import ColorLoss, InpaintLoss, MaskLoss, PerceptualLoss, choose_loss
from .checkpoints import (ChecksumError, default_weights, export_weights, find_weights, load_model, read_config,
                          save_model, update_inference_config, verify_checksums, write_checksums)
from .baselines import gray_copy, prefill, telea
from .pipeline import Restoration, Restorer, colorize, colorize_chroma, inpaint, predict_mask, predict_masks
from .batch_restore import BatchReport, NothingRestoredError, make_submission, restore_files
from .training import compare_options, fit
from .distributed import train_stage
from .stages import ColorStage, InpaintStage, MaskStage
from .evaluation import (calibrate_chroma_gain, median_ms, stage_summary,
                         validate_color, validate_inpaint, validate_mask)
from .plots import overlay_mask, plot_history, plot_hole_colour, show_grid, worst_and_best
