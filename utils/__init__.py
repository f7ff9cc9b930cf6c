"""Image-Restore shared code: data, damage, metric, models, losses, training, pipeline, submission.

`import utils` gives the public names of every module; each concern lives in its own module.
"""
import os as _os

# no network at run time: albumentations asks PyPI for a newer version when it is imported unless told not to
_os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from .baselines import gray_copy, telea  # noqa: E402
from .damage import Damage, DamageConfig, apply_damage, sample_damage
from .data import (JoinedDataset, ProvidedPairsDataset, SyntheticDamageDataset, check_images, load_test_table,
                   load_train_table, resolve_data_dir, split_indices)
from .imageio import IMAGE_SIZE, DataError, gray_of, read_image, write_png
from .paths import project_dir, project_path, project_root, smoke_default
from .metric import score_arrays, score_folder, score_image, summarize
from .sample_data import build_sample_dataset, builtin_photo_paths, ensure_dataset
from .submission import SubmissionError, validate_submission, write_submission_zip, zip_folder
from .color import compose_rgb, rgb_to_cbcr, ycbcr_to_rgb
from .mask_refine import RefineConfig, mask_stats, refine_mask
from .hue import HueConfig, calibrate_hue, calibrate_pipeline_hue, hue_prior, match_hue
from .models import (ColorizationNet, InpaintNet, MaskNet, PatchDiscriminator, PretrainedWeightsError,
                     build_model, create_encoder)
from .losses import ColorLoss, InpaintLoss, MaskLoss, PerceptualLoss
from .training import autocast, fit, load_model, pick_device, save_model, update_inference_config
from .pipeline import Restoration, Restorer, colorize, inpaint, predict_mask, predict_masks, restore_any_image
from .stages import (ColorStage, InpaintDataset, InpaintStage, MaskStage, calibrate_chroma_gain, validate_color, validate_inpaint,
                     validate_mask)
from .weights import ChecksumError, export_weights, find_weights, read_config, verify_checksums, write_checksums
from .experiment import compare_options, datasets, default_amp, median_ms, save_json, setup
from .plots import overlay_mask, plot_history, show_grid
