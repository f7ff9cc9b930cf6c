"""Writing and validating the competition submission zip."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..core.files import atomic_path
from ..core.guards import read_zip_member
from ..core.images import IMAGE_SIZE, DataError, png_bytes

# a 512x512 RGB PNG holds at most ~0.8 MB (raw pixels plus PNG overhead): a member larger than this is not one,
# and is refused before it is read (validate_submission never holds more than this of one member in memory)
MAX_MEMBER_BYTES = 4 * 2**20


class SubmissionError(ValueError):
    """The submission zip breaks a rule; the message names the file."""


def _refuse_duplicates(names: list[str], source, where: str = "line") -> None:
    """SubmissionError naming `source`, the first name listed twice or more and its csv lines (the header is line
    1), or its items (1-based) in a list."""
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        seen.setdefault(n, []).append(i)
    dups = {n: rows for n, rows in seen.items() if len(rows) > 1}
    if dups:
        name, rows = next(iter(dups.items()))
        at = [r + 2 if where == "line" else r + 1 for r in rows]
        more = f" (and {len(dups) - 1} more duplicated)" if len(dups) > 1 else ""
        raise SubmissionError(f"{source}: {name} is listed {len(rows)} times, on {where}s "
                              f"{', '.join(map(str, at[:10]))}{more}; each test image must appear once")


def expected_names(test_csv) -> list[str]:
    """The PNG names a submission for test.csv holds (each input's file name); a name listed twice is refused."""
    df = pd.read_csv(test_csv)
    if "input_image_path" not in df.columns:
        raise SubmissionError(f"{test_csv}: no 'input_image_path' column (columns: {list(df.columns)})")
    names = [Path(p).name for p in df["input_image_path"]]
    _refuse_duplicates(names, test_csv, "line")
    return names


class SubmissionWriter:
    """A flat submission zip written one image at a time (nothing but the current image in memory), atomically:
    the zip appears at `zip_path` only when the `with` block succeeds.

        with SubmissionWriter(path) as w:
            w.add("TEST_000.png", rgb)
    """

    def __init__(self, zip_path):
        self.zip_path = Path(zip_path)
        self.names: list[str] = []

    def __enter__(self):
        self._atomic = atomic_path(self.zip_path)
        self._zf = zipfile.ZipFile(self._atomic.__enter__(), "w", compression=zipfile.ZIP_DEFLATED)
        return self

    def add(self, name: str, arr) -> None:
        arr = np.asarray(arr)
        if arr.shape != (IMAGE_SIZE, IMAGE_SIZE, 3) or arr.dtype != np.uint8:
            raise SubmissionError(f"{name}: expected uint8 {IMAGE_SIZE}x{IMAGE_SIZE}x3, got {arr.dtype} {arr.shape}")
        name = Path(name).name
        if name in self.names:
            raise SubmissionError(f"{self.zip_path}: {name} would be written twice")
        self._zf.writestr(name, png_bytes(arr))
        self.names.append(name)

    def __exit__(self, *exc):
        self._zf.close()
        return self._atomic.__exit__(*exc)


def write_submission_zip(images: dict, zip_path) -> Path:
    """Write {png name: uint8 512x512x3 RGB array} into one flat zip, atomically."""
    with SubmissionWriter(zip_path) as w:
        for name, arr in sorted(images.items()):
            w.add(name, arr)
    return Path(zip_path)


def zip_folder(png_dir, zip_path) -> Path:
    """Zip every PNG of a folder (flat), atomically."""
    png_dir = Path(png_dir)
    zip_path = Path(zip_path)
    with atomic_path(zip_path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(png_dir.glob("*.png")):
                zf.write(p, arcname=p.name)
    return zip_path


def validate_submission(zip_path, test_csv) -> list[str]:
    """Check a submission zip against test.csv (or a list of expected PNG names); return the names, or
    raise SubmissionError naming the problem: missing, extra or misnamed files, folders, wrong size or
    mode, corrupt PNGs, and an expected name listed twice (test.csv naming the csv and the lines)."""
    zip_path = Path(zip_path)
    if isinstance(test_csv, (list, tuple)):
        want = list(test_csv)
        _refuse_duplicates(want, "expected names", "item")
    else:
        want = expected_names(test_csv)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, FileNotFoundError) as e:
        raise SubmissionError(f"{zip_path}: not a readable zip ({e})") from e
    with zf:
        infos = zf.infolist()
        for info in infos:
            if info.is_dir() or "/" in info.filename or "\\" in info.filename:
                raise SubmissionError(f"{zip_path}: '{info.filename}' is inside a folder; the zip must be flat")
        names = [i.filename for i in infos]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SubmissionError(f"{zip_path}: duplicate entries {dup}")
        missing = sorted(set(want) - set(names))
        extra = sorted(set(names) - set(want))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {missing[:10]}{' ...' if len(missing) > 10 else ''}")
            if extra:
                parts.append(f"unexpected (extra or misnamed) {extra[:10]}{' ...' if len(extra) > 10 else ''}")
            raise SubmissionError(f"{zip_path}: " + "; ".join(parts))
        for name in want:
            try:
                data = read_zip_member(zf, zf.getinfo(name), MAX_MEMBER_BYTES, zip_path)
            except DataError as e:
                raise SubmissionError(str(e)) from e
            try:
                with Image.open(io.BytesIO(data)) as im:
                    fmt, mode, size = im.format, im.mode, im.size
                    im.load()
            except Exception as e:  # noqa: BLE001 - any decoder failure is a corrupt file
                raise SubmissionError(f"{zip_path}: {name} is not a readable PNG ({e})") from e
            if fmt != "PNG":
                raise SubmissionError(f"{zip_path}: {name} is {fmt}, not PNG")
            if mode != "RGB":
                raise SubmissionError(f"{zip_path}: {name} has mode {mode}, expected RGB")
            if size != (IMAGE_SIZE, IMAGE_SIZE):
                raise SubmissionError(f"{zip_path}: {name} is {size[0]}x{size[1]}, expected {IMAGE_SIZE}x{IMAGE_SIZE}")
    return want


__all__ = ["SubmissionError", "validate_submission", "write_submission_zip", "zip_folder"]
