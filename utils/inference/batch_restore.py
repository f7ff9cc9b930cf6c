"""The one batch flow, read -> restore -> write -> zip -> validate, shared by restore.py, the app's batch tab,
notebook 05 and the scale rehearsal: `restore_files` over any named image sources, `make_submission` over a
data set's test.csv.

A source is `(output_name, load)`: `load()` returns a uint8 image (any size or mode), or a pair (image, hole mask) when
the hole is given (utils.hole_masks), or raises utils.DataError naming the file; a source that cannot be read is
reported in `BatchReport.failed` and skipped, the rest are restored. Outputs are written atomically; the zip is streamed
(one image in memory at a time) and validated at the end.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..core.images import DataError, write_png
from .pipeline import Restoration, Restorer
from .submission import SubmissionError, SubmissionWriter, validate_submission

Source = tuple[str, Callable[[], np.ndarray]]


class NothingRestoredError(SubmissionError):
    """Not one source could be restored, so no zip was written; `failed` says why, file by file."""

    def __init__(self, zip_path, failed: list[str]):
        super().__init__(f"{zip_path}: no image could be restored, no zip written: " + "; ".join(failed))
        self.failed = failed


class BatchSubmissionError(SubmissionError):
    """The zip was written but is not a valid submission (e.g. a test input could not be read); `report` says
    what was restored and what failed."""

    def __init__(self, error: SubmissionError, report: BatchReport):
        extra = f" (not restored: {'; '.join(report.failed)})" if report.failed else ""
        super().__init__(f"{error}{extra}")
        self.report = report


@dataclass
class BatchReport:
    written: list[Path] = field(default_factory=list)  # restored PNGs (at each input's own size)
    zipped: list[str] = field(default_factory=list)  # names in the validated zip
    failed: list[str] = field(default_factory=list)  # "<file>: <problem>", one line each
    zip_path: Path | None = None
    results: dict[str, Restoration] = field(default_factory=dict)  # with keep=True: name -> restoration


def restore_files(
    restorer: Restorer,
    sources: Iterable[Source],
    out_dir=None,
    zip_path=None,
    masks_dir=None,
    batch_size: int = 4,
    png_level: int = 1,
    keep: bool = False,
    progress: bool = True,
    total: int | None = None,
    expected=None,
    report: BatchReport | None = None,
    add_detected: bool = False,
) -> BatchReport:
    """Restore every source; write `<out_dir>/<name>` (the input's own size) and the hole filled as a 0/255 PNG in
    `masks_dir` (with a given hole mask, the detected hole is added to it with `add_detected`); stream the 512x512
    restorations into the submission zip `zip_path` and validate it against `expected` (a test.csv or a list of names;
    default: the names written). `keep` keeps the restorations in the report (for plots and scores). PNGs are written
    with zlib level `png_level` (1: 4x faster than PIL's default 6, files about 10% larger, the same pixels). `report`:
    a BatchReport to fill in (default: a new one), so that a caller interrupted by Ctrl-C (KeyboardInterrupt, on which
    the zip's and the PNGs' temporary files are removed and the zip is not written) can say how far it got."""
    report = report if report is not None else BatchReport()
    report.zip_path = Path(zip_path) if zip_path else None
    writer = SubmissionWriter(zip_path) if zip_path else None
    bar = tqdm(total=total, desc="restoring", unit="img", disable=not progress)

    def save(name: str, r: Restoration) -> None:
        for folder, image in ((out_dir, r.restored), (masks_dir, r.mask.astype(np.uint8) * 255)):
            if folder is None:
                continue
            try:
                write_png(Path(folder) / name, image, compress_level=png_level)
            except OSError as e:
                report.failed.append(f"{Path(folder) / name}: cannot write ({e.strerror or e})")
                tqdm.write(f"not written: {report.failed[-1]}")
                return
        if out_dir is not None:
            report.written.append(Path(out_dir) / name)
        if writer is not None:
            writer.add(name, r.submission_image)
            report.zipped.append(name)
        if keep:
            report.results[name] = r

    pending: deque[str] = deque()  # the names of the images handed to the restorer, in order

    def images():
        """Each source decoded when the restorer asks for it: it keeps only the 512x512 gray (and the given
        bool hole mask) of each image of a batch, so one full-size image at a time is in memory."""
        for name, load in sources:
            try:
                image = load()
            except DataError as e:
                report.failed.append(str(e))
                tqdm.write(f"skipped: {e}")
                bar.update(1)
                continue
            pending.append(name)
            yield image

    def run():
        for r in restorer.restore_images(images(), batch_size, add_detected=add_detected):
            save(pending.popleft(), r)
            bar.update(1)

    try:
        if writer is None:
            run()
        else:
            with writer:
                run()
                if not report.zipped:
                    raise NothingRestoredError(zip_path, report.failed)
            try:
                validate_submission(zip_path, expected if expected is not None else report.zipped)
            except SubmissionError as e:
                raise BatchSubmissionError(e, report) from e
    finally:
        bar.close()
    return report


__all__ = ["BatchReport", "BatchSubmissionError", "NothingRestoredError", "restore_files"]
