"""Image-Restore shared code: data, damage, metric, models, losses, training, pipeline, submission.

`import utils` gives the public names of every module; each concern lives in its own module.
"""
from .baselines import gray_copy, telea
from .damage import Damage, DamageConfig, apply_damage, sample_damage
from .data import (ProvidedPairsDataset, SyntheticDamageDataset, check_images, load_test_table,
                   load_train_table, resolve_data_dir, split_indices)
from .imageio import IMAGE_SIZE, DataError, gray_of, read_image, write_png
from .metric import score_arrays, score_folder, score_image, summarize
from .sample_data import build_sample_dataset, builtin_photo_paths, ensure_dataset
from .submission import SubmissionError, validate_submission, write_submission_zip, zip_folder
