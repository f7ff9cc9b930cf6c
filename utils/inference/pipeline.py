"""The thin inference pipeline (as in DDColor): `Restorer.restore(gray) -> RGB` and, for any number of images of
any size or mode, `Restorer.restore_images(...)`; reused by the notebooks, restore.py, the app, the benchmark and
the tests (the read -> restore -> write -> zip flow is utils.batch_restore). It imports no training code.

The hole is found by the mask network, or given: `restore(image, hole_mask=...)` (any shape: scratches, spots,
several regions; utils.hole_masks), alone or added to the detected one (`restore_images(..., add_detected=True)`).

Order 'mask-colorize-inpaint' (the design, default): find the hole, colour the image, fill the hole; the colour
net sees the luminance with the hole pre-filled (the inpainter's pre-fill) and no hole marked, so that the damage
leaves no trace in the colours.
Order 'mask-inpaint-colorize': find the hole, fill it in gray, colour the result.
The mask and colour networks run at their working size (256 by default); the mask is refined at full size and
chroma is upsampled onto the full-resolution luminance. The inpainter works on luminance at full resolution, on a
window around the hole: the pre-fill its weights record (the biharmonic fill, or Telea) plus the network's
correction, inside the hole only; the hole keeps the colour stage's chroma.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..core.checkpoints import load_model, read_config, verify_checksums
from ..core.configs import PREFILLS
from ..core.images import IMAGE_SIZE, gray_of
from ..core.runtime import autocast, check_amp, choose_precision, pick_device
from .chroma import continue_ring_chroma
from .color import compose_rgb, replace_luma, with_luma
from .guidance import REFERENCE_EDGE_RADIUS, apply_hints, check_hints, reference_prior, scale_hints
from .hole_masks import hole_mask_array, mask_back, working_mask
from .hue import HueConfig, match_hue
from .mask_refine import RefineConfig, refine_mask
from .natural import FadeConfig, fade_pale
from .prefills import prefill

ORDERS = ("mask-colorize-inpaint", "mask-inpaint-colorize")
COLOURS = ("natural", "score")     # the colour net's own hues (pale tints faded), or the stored hue remap
HOLE_COLOURS = ("ring", "net")    # the hole's chroma: continued from its ring, or the pipeline's own
BACKENDS = ("torch", "onnx")
# px the detected hole of an image resized to 512x512 is grown by: the resize blends the fill's edge into its
# surroundings, so the refinement (one exact fill value) misses a ring of 1-2 px that would leak into the fill
RESIZED_HOLE_GROWTH = 2
_POOL: ThreadPoolExecutor | None = None


def _map(fn, *iterables) -> list:
    """[fn(*args)] over a batch's images, in threads (OpenCV and NumPy release the GIL): the per-image CPU
    work (mask refinement, chroma composition, the colour post-process) then uses every core, as the networks do."""
    global _POOL
    args = list(zip(*iterables))
    if len(args) < 2:
        return [fn(*a) for a in args]
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, min(8, torch.get_num_threads())), thread_name_prefix="restore")
    return list(_POOL.map(lambda a: fn(*a), args))


def _model_device(net) -> torch.device:
    if not isinstance(net, torch.nn.Module):      # an onnxruntime network (utils.onnx_backend.OnnxNet)
        return net.device
    return next(net.parameters()).device


def _resize_stack(arrays, size: int, interp=cv2.INTER_AREA) -> np.ndarray:
    return np.stack([a if a.shape[0] == size else cv2.resize(a, (size, size), interpolation=interp) for a in arrays])


def _run(net, *inputs, amp: str = "off"):
    if not isinstance(net, torch.nn.Module):
        return net(*inputs)
    device = _model_device(net)
    tensors = [torch.from_numpy(np.ascontiguousarray(x)).to(device).contiguous(memory_format=torch.channels_last)
               for x in inputs]
    with torch.inference_mode(), autocast(device, amp or "off"):      # amp: a precision (utils.runtime)
        return net(*tensors).float()


@torch.inference_mode()
def mask_probability(net, grays, size: int = 256, amp: str = "off") -> np.ndarray:
    """[B] uint8 HxW grays -> [B,H,W] float hole probability at the input size."""
    h = grays[0].shape[0]
    x = _resize_stack(grays, size).astype(np.float32)[:, None] / 255.0
    logits = _run(net, x, amp=amp)
    if size != h:
        logits = F.interpolate(logits, size=(h, h), mode="bilinear", align_corners=False)
    return torch.sigmoid(logits)[:, 0].cpu().numpy()


def predict_masks(net, grays, size: int = 256, refine: RefineConfig | None = None, amp: str = "off") -> list:
    """Batched: hole masks (bool HxW) for damaged gray images, refined with the exact fill value."""
    probs = mask_probability(net, grays, size, amp)
    return _map(lambda g, p: refine_mask(g, p, refine), grays, probs)


def predict_mask(net, gray: np.ndarray, size: int = 256, refine: RefineConfig | None = None,
                 amp: str = "off") -> np.ndarray:
    """The hole of one damaged gray image as a bool HxW array (512x512 for competition inputs)."""
    return predict_masks(net, [gray], size, refine, amp)[0]


def colorize_chroma(net, grays, masks, size: int = 256, amp: str = "off") -> np.ndarray:
    """[B] grays + masks -> [B,size,size,2] Cb/Cr (0-1) at the working size."""
    g = _resize_stack(grays, size).astype(np.float32)[:, None] / 255.0
    m = _resize_stack([m.astype(np.float32) for m in masks], size)[:, None]
    return _run(net, g, m, amp=amp).permute(0, 2, 3, 1).cpu().numpy()


def colorize(net, grays, masks, size: int = 256, amp: str = "off") -> list:
    """RGB images whose luminance is exactly the input gray (chroma from the network)."""
    return _map(compose_rgb, grays, colorize_chroma(net, grays, masks, size, amp))


def _pad_to(a: np.ndarray, multiple: int) -> np.ndarray:
    h, w = a.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    return np.pad(a, ((0, ph), (0, pw)), mode="reflect") if ph or pw else a


def _hole_window(mask: np.ndarray, margin: int = 64, least: int = 128) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the hole's bounding box grown by `margin` px on each side and to at least `least` px,
    within the image. The network runs on this window only (about half the work of the whole 512 image)."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)

    def span(lo, hi, size):
        lo, hi = max(0, lo - margin), min(size, hi + 1 + margin)
        grow = max(0, min(least, size) - (hi - lo))
        lo, hi = max(0, lo - grow // 2), min(size, hi + grow - grow // 2)
        return max(0, min(lo, hi - least)), min(size, max(hi, lo + least))

    return (*span(int(ys.min()), int(ys.max()), h), *span(int(xs.min()), int(xs.max()), w))


def inpaint(net, images, masks, amp: str = "off", prefill_method="telea") -> list:
    """Fill the hole of gray (or RGB) images: the luminance is pre-filled (`prefill_method`: a method of
    utils.prefill, the one the network trained over, or for comparisons any function (gray, mask) -> filled gray)
    and refined by the network at the image's own resolution; an RGB image keeps its chroma
    (Cb/Cr) and gets the new luminance in the hole. Pixels outside the hole are returned unchanged. The network is fully
    convolutional: it runs on a window around each hole at the image's own resolution."""
    multiple = 32 if getattr(net, "block", None) == "unet" else 8
    lumas = [im if im.ndim == 2 else gray_of(im) for im in images]
    fill = prefill_method if callable(prefill_method) else lambda g, m: prefill(g, m, prefill_method)
    pre = [fill(g, m) for g, m in zip(lumas, masks)]
    out = []
    for p, m in zip(pre, masks):  # one at a time: images may differ in size
        out.append(p.copy())
        if not m.any():
            continue
        y0, y1, x0, x1 = _hole_window(m)  # the hole with a margin, as the network was trained on
        crop, hole = p[y0:y1, x0:x1], m[y0:y1, x0:x1]
        x = _pad_to(crop, multiple).astype(np.float32)[None, None] / 255.0
        mk = _pad_to(hole.astype(np.float32), multiple)[None, None]
        y = _run(net, x, mk, amp=amp)
        y = y.cpu().numpy() if torch.is_tensor(y) else np.asarray(y)
        out[-1][y0:y1, x0:x1] = np.clip(y[0, 0, : y1 - y0, : x1 - x0] * 255.0, 0, 255).round().astype(np.uint8)

    def put(im, luma, mk):
        if im.ndim == 2:
            res = im.copy()
            res[mk] = luma[mk]
            return res
        return replace_luma(im, luma, mk)

    return _map(put, images, out, masks)


@dataclass
class Restoration:
    restored: np.ndarray  # uint8 HxWx3
    mask: np.ndarray  # bool HxW
    colorized: np.ndarray  # uint8 HxWx3 (after stage 2: in the design's order, the hole pre-filled only)
    competition: np.ndarray | None = None  # the 512x512 restoration when `restored` was resized back (else None)

    @property
    def submission_image(self) -> np.ndarray:
        """The 512x512 restoration that goes into a submission zip."""
        return self.restored if self.competition is None else self.competition


class Restorer:
    """The three stages together. `Restorer.from_dir(dir)` loads mask.*, color.* and inpaint.* checkpoints.

    The colour post-process (`finish`) keeps the luminance exactly: the hue remap towards the stored prior, or a
    reference photo's hues (`with_guidance`), at `colour_strength` (`utils.hue.match_hue`; none for natural colours);
    with hole_colour='ring', the hole's chroma continued from its surroundings; with natural colours, pale tints
    faded to gray (`fade`, `utils.natural.fade_pale`); last, the user's colour hints (`utils.guidance.apply_hints`)."""

    def __init__(
        self,
        mask_net,
        color_net,
        inpaint_net,
        sizes=None,
        refine: RefineConfig | None = None,
        order: str = ORDERS[0],
        amp: str | None = "auto",
        hue: HueConfig | None = None,
        colour_strength: float | None = None,
        hole_colour: str = "net",
        prefill: str = "telea",
        fade: FadeConfig | None = None,
    ):
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}")
        if hole_colour not in HOLE_COLOURS:
            raise ValueError(f"hole_colour must be one of {HOLE_COLOURS}, got {hole_colour!r}")
        self.mask_net, self.color_net, self.inpaint_net = mask_net, color_net, inpaint_net
        self.sizes = {"mask": 256, "color": 256, "inpaint": 256, **(sizes or {})}
        self.refine = refine or RefineConfig()
        self.order = order
        self.hue = hue or HueConfig()  # the remap's settings; hue.strength is the stored submission strength
        self.hole_colour = hole_colour
        if prefill not in PREFILLS:
            raise ValueError(f"prefill must be one of {PREFILLS}, got {prefill!r}")
        self.prefill = prefill  # the inpainter's pre-fill (utils.prefill): the one it trained over
        self.colour_strength = self.hue.strength if colour_strength is None else _strength(colour_strength)
        self.colour = "score" if colour_strength is None else self.colour_strength  # the setting (with_colour)
        self.fade = fade  # natural colours' fade of pale tints (None: no fade)
        self.reference = False  # with_guidance(reference=...): the remap aims at a reference photo's hues
        self.hints: list = []  # with_guidance(hints=...): colour hints, in each input image's own pixels
        # the precision the networks run in (utils.runtime.choose_precision): 'auto' is bf16 on cards of compute
        # capability 8.0 and up, fp16 on 7.x (T4, V100), fp32 on older cards and on the CPU
        self.amp = "off" if check_amp(amp) == "off" else choose_precision(_model_device(mask_net), amp)

    @classmethod
    def from_dir(
        cls,
        weights_dir,
        device: str = "auto",
        verify: bool = True,
        backend: str = "torch",
        colour: str | float = "natural",
        **kwargs,
    ) -> Restorer:
        """backend 'torch' (CPU or CUDA) or 'onnx' (onnxruntime on the CPU; the ONNX files are exported
        on first use into <weights_dir>/onnx/ and verified at every load, see utils.onnx_backend).
        colour 'natural' (default): the colour net's own hues, pale tints faded to gray (the weights'
        `inference.fade`); 'score': the hue remap towards the training photos' mean hue histogram at the
        strength the weights store (chosen for the competition's score: more hue term, visibly other hues,
        docs/colour_experiments.md); or a strength in [0, 1] (0 = the colour net's own hues without the fade,
        1 = the full remap)."""
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        _check_colour(colour)
        weights_dir = Path(weights_dir)
        if not weights_dir.is_dir():
            raise FileNotFoundError(
                f"{weights_dir}: weights folder not found (a relative path is taken from the "
                f"working directory, {Path.cwd()}; the shipped weights are in "
                f"{Path(__file__).resolve().parents[2] / 'weights'})"
            )
        if verify:  # the weights and configs against checksums.json (a missing listing is an error too)
            verify_checksums(weights_dir)
        nets, configs = {}, {}
        if backend == "onnx":
            if device == "cuda":
                raise ValueError("the ONNX backend runs on the CPU (onnxruntime); use backend='torch' for CUDA")
            from .onnx_backend import load_onnx_nets

            # mask and colour in onnxruntime; the inpainter stays in PyTorch below (its Fourier units are slow
            # through ONNX Runtime's DFT)
            nets = load_onnx_nets(weights_dir)
            configs = {stage: read_config(weights_dir / f"{stage}.json") for stage in nets}
        dev = pick_device("cpu" if backend == "onnx" else device)
        for stage in ("mask", "color", "inpaint"):
            if stage not in nets:
                net, configs[stage] = load_model(weights_dir / stage, dev)
                nets[stage] = net.to(memory_format=torch.channels_last)
        sizes = {stage: cfg.get("inference", {}).get("size", 256) for stage, cfg in configs.items()}
        mask_inf, color_inf = configs["mask"].get("inference", {}), configs["color"].get("inference", {})
        kwargs.setdefault("refine", RefineConfig.from_dict(mask_inf["refine"]) if "refine" in mask_inf else None)
        kwargs.setdefault("hue", HueConfig.from_dict(color_inf.get("hue")))
        kwargs.setdefault("hole_colour", color_inf.get("hole_colour", "net"))
        # the pre-fill the inpainter trained over; weights that record none trained over Telea
        kwargs.setdefault("prefill", configs["inpaint"].get("inference", {}).get("prefill", "telea"))
        kwargs.setdefault("fade", FadeConfig.from_dict(color_inf.get("fade")))
        if color_inf.get("chroma_gain", 1.0) != 1.0:  # a gain of 1.0 in a config changes nothing: it is ignored
            raise ValueError(
                f"{weights_dir / 'color.json'}: inference chroma_gain {color_inf['chroma_gain']}: the "
                "pipeline scales no chroma; remove the entry (or set it to 1.0)"
            )
        restorer = cls(nets["mask"], nets["color"], nets["inpaint"], sizes=sizes, **kwargs)
        return restorer.with_colour(colour)

    def with_colour(self, colour: str | float) -> Restorer:
        """A restorer on the same networks with another colour setting: 'natural' (strength 0, pale tints faded),
        'score' (the strength the weights store, `hue.strength`) or a strength in [0, 1].
        With a reference (`with_guidance`), the remap towards it: at full strength for 'natural', at the stored
        strength for 'score', at the given strength for a number."""
        _check_colour(colour)
        out = copy.copy(self)
        out.colour = colour if isinstance(colour, str) else _strength(colour)
        out.colour_strength = out._strength_for(colour)
        return out

    def _strength_for(self, colour) -> float:
        if colour == "score":
            return self.hue.strength
        if colour == "natural":
            return 1.0 if self.reference else 0.0
        return _strength(colour)

    def with_guidance(self, reference: np.ndarray | None = None, hints=None) -> Restorer:
        """A restorer on the same networks guided by the user. `reference`: a colour photo (uint8 RGB or RGBA, any
        size) whose hue histogram replaces the training photos' mean as the remap's target, the remap on (at full
        strength for colour 'natural', see `with_colour`; its change smoothed over at most REFERENCE_EDGE_RADIUS
        px); `hints`: [(x, y, (r, g, b)), ...], points in each input image's own pixels (x from the left, y from the
        top) and colours, spread over the region each belongs to (`utils.guidance.apply_hints`). Bad input:
        ValueError naming the problem."""
        out = copy.copy(self)
        if reference is not None:
            out.hue = replace(self.hue, prior=reference_prior(reference),
                              edge_radius=min(self.hue.edge_radius, REFERENCE_EDGE_RADIUS))
            out.reference = True
            out.colour_strength = out._strength_for(self.colour)
        if hints is not None:
            out.hints = check_hints(hints)  # the form here; the bounds per image
        return out

    @property
    def fades(self) -> bool:
        """Whether `finish` fades pale tints: natural colours, no reference, a fade in the weights."""
        return self.colour == "natural" and not self.reference and self.fade is not None

    def restore_batch(
        self, grays, masks=None, finish: bool = True, add_detected: bool = False, grow_detected=0, hints=None
    ) -> list[Restoration]:
        """Damaged gray images (uint8 HxW, 512x512 for the competition) -> restorations. `masks`: the holes (one
        per image, HxW, non-zero = damaged; a None entry: that image's hole is detected), which skips stage 1;
        add_detected: the detected hole is added to each given one; grow_detected: px the detected hole is grown by
        (one number, or one per image). finish=False: `restored` before the colour
        post-process (`finish` applies it; research/colour_frontier.py applies several settings to one network
        pass). `hints`: one list of hints per image, in its pixels (default: the restorer's own, `with_guidance`).
        Other images (RGB, other sizes): `restore` or `restore_images`."""
        grays = [np.ascontiguousarray(g) for g in grays]
        for i, g in enumerate(grays):
            if g.dtype != np.uint8 or g.ndim != 2:
                raise ValueError(
                    f"image {i}: restore_batch takes uint8 gray HxW arrays, got {g.dtype} {g.shape}; "
                    "Restorer.restore / restore_images take RGB, RGBA or gray uint8 of any size"
                )
        masks = [None] * len(grays) if masks is None else list(masks)
        if len(masks) != len(grays):
            raise ValueError(f"restore_batch: {len(grays)} images and {len(masks)} masks")
        hints = [self._hints_for(g.shape) for g in grays] if hints is None else hints
        if len(hints) != len(grays):
            raise ValueError(f"restore_batch: {len(hints)} lists of hints for {len(grays)} images")
        masks = [
            None if m is None else hole_mask_array(m, g.shape, f"mask {i}")
            for i, (g, m) in enumerate(zip(grays, masks))
        ]
        detect = [i for i, m in enumerate(masks) if m is None or add_detected]
        if detect:
            grow = [grow_detected] * len(grays) if np.isscalar(grow_detected) else list(grow_detected)
            found = predict_masks(self.mask_net, [grays[i] for i in detect], self.sizes["mask"], self.refine, self.amp)
            for i, f in zip(detect, found):
                f = _grown(f, int(grow[i]))
                masks[i] = f if masks[i] is None else masks[i] | f
        no_hole = [np.zeros_like(m) for m in masks]
        if self.order == "mask-colorize-inpaint":
            # the colour net sees the hole pre-filled and no hole: shown the damage and its mask, it painted ghosts
            # of the damage into the colours around it (docs/how_it_works.md, Colour)
            filled = [prefill(g, m, self.prefill) if m.any() else g for g, m in zip(grays, masks)]
            colored = colorize(self.color_net, filled, no_hole, self.sizes["color"], self.amp)
            restored = inpaint(self.inpaint_net, colored, masks, amp=self.amp, prefill_method=_prefilled)
        else:
            filled = inpaint(self.inpaint_net, grays, masks, amp=self.amp, prefill_method=self.prefill)
            colored = colorize(self.color_net, filled, no_hole, self.sizes["color"], self.amp)
            restored = colored
        if finish:
            restored = _map(lambda r, m, h: self.finish(r, m, hints=h), restored, masks, hints)
        return [Restoration(r, m, c) for r, m, c in zip(restored, masks, colored)]

    def _hints_for(self, shape) -> list:
        h, w = shape[:2]
        return check_hints(self.hints, w, h)

    def finish(self, rgb: np.ndarray, mask: np.ndarray, strength: float | None = None, hints=None) -> np.ndarray:
        """The colour post-process of a restored image (uint8 HxWx3), luminance kept exactly: the hue remap towards
        the prior (or the reference) at `strength` (default: `colour_strength`; 0 = none); with hole_colour='ring',
        the hole's chroma carried in from the ring around it; with natural colours (`fades`) and no `strength`
        given, pale tints faded to gray; last, `hints` [(x, y, (r, g, b)), ...] in this image's pixels, spread
        along its luminance's edges."""
        s = self.colour_strength if strength is None else _strength(strength)
        out = match_hue(rgb, replace(self.hue, strength=s), mask) if s > 0 else rgb
        if self.hole_colour == "ring":
            out = continue_ring_chroma(out, mask)
        if strength is None and self.fades:
            out = fade_pale(out, self.fade)
        if hints:
            out = apply_hints(out, hints)
        return out

    def restore(self, image: np.ndarray, hole_mask=None, reference: np.ndarray | None = None, hints=None) -> np.ndarray:
        """One damaged image (uint8 gray, RGB or RGBA, any size; the competition's is 512x512 gray) -> the restored
        RGB image (uint8 HxWx3, the input's size). `hole_mask`: where the image is damaged (HxW of the image's
        size, non-zero = damaged; any shape), filled instead of the detected hole. `reference` (a colour photo
        whose hues to aim at) and `hints` ([(x, y, (r, g, b)), ...] in the image's pixels): `with_guidance`."""
        item = image if hole_mask is None else (image, hole_mask)
        return next(self.restore_images([item], batch_size=1, reference=reference, hints=hints)).restored

    def detect_hole(self, image: np.ndarray) -> np.ndarray:
        """The hole the mask network finds in a damaged image (any size or mode, as `restore` takes it): bool HxW at
        the image's size (the hole `restore` fills when it is given none)."""
        image = np.asarray(image)
        hole = predict_masks(self.mask_net, [to_competition_gray(image)], self.sizes["mask"], self.refine, self.amp)[0]
        grow = RESIZED_HOLE_GROWTH if image.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE) else 0
        return mask_back(_grown(hole, grow), *image.shape[:2])

    def restore_images(
        self,
        images: Iterable,
        batch_size: int = 4,
        add_detected: bool = False,
        reference: np.ndarray | None = None,
        hints=None,
    ) -> Iterator[Restoration]:
        """Images of any size or mode (uint8 L, RGB or RGBA) -> their `Restoration`s (`.restored`: the RGB image at
        the input's own size; `.mask`: the hole filled), in order, `batch_size` at a time (the networks batched,
        the per-image work in threads). An item may be a pair `(image, hole_mask)`: the hole is then the mask's
        non-zero pixels (HxW of the image's size), not the detected one, or both with `add_detected`. Each image
        is converted to the competition's gray and 512x512 first, its mask with it (every damaged pixel kept,
        utils.hole_masks.working_mask); the detected hole of a resized image is grown by RESIZED_HOLE_GROWTH px.
        `Restoration.competition` keeps the 512x512 result (what a submission holds). `reference` and `hints`
        (the same for every image, in each one's own pixels; a hint outside an image is an error): `with_guidance`."""
        if reference is not None or hints is not None:
            yield from self.with_guidance(reference, hints).restore_images(images, batch_size, add_detected)
            return
        batch: list[tuple[np.ndarray, tuple, np.ndarray | None]] = []

        def flush():
            rs = self.restore_batch(
                [g for g, _, _ in batch],
                [None if m is None else working_mask(m, IMAGE_SIZE) for _, _, m in batch],
                add_detected=add_detected,
                grow_detected=[0 if o.shape == (IMAGE_SIZE, IMAGE_SIZE) else RESIZED_HOLE_GROWTH for _, o, _ in batch],
                hints=[scale_hints(self._hints_for(o.shape), o.shape, g.shape) for g, o, _ in batch],
            )
            for (_, own, hole), r in zip(batch, rs):
                yield resize_restoration(r, own, hole=hole, add_detected=add_detected)
            batch.clear()

        for item in images:
            image, hole = item if isinstance(item, tuple) else (item, None)
            own = own_gray(image)
            shape = own.shape
            batch.append((to_competition_gray(own), own, None if hole is None else hole_mask_array(hole, shape)))
            if len(batch) >= batch_size:
                yield from flush()
        if batch:
            yield from flush()


def _prefilled(gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The pre-fill of a luminance whose hole is pre-filled already (the colour net's input in the design's order)."""
    return gray


def _grown(mask: np.ndarray, px: int) -> np.ndarray:
    """A bool mask dilated by `px` pixels (a (2px+1)-square), or itself for px = 0."""
    if px <= 0:
        return mask
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)).astype(bool)


def _strength(s) -> float:
    try:
        s = float(s)
    except (TypeError, ValueError):
        raise ValueError(f"a colour strength must be a number in [0, 1], got {s!r}") from None
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"a colour strength must be in [0, 1] (0 = natural, 1 = the full hue remap), got {s}")
    return s


def _check_colour(colour) -> None:
    if isinstance(colour, str):
        if colour not in COLOURS:
            raise ValueError(f"colour must be one of {COLOURS} or a strength in [0, 1], got {colour!r}")
    elif isinstance(colour, bool) or not isinstance(colour, (int, float)):
        raise ValueError(f"colour must be one of {COLOURS} or a strength in [0, 1], got {colour!r}")
    else:
        _strength(colour)


def to_competition_gray(image: np.ndarray) -> np.ndarray:
    """Any uint8 image -> 512x512 gray (PIL luma; area or cubic resize)."""
    image = own_gray(image)
    h, w = image.shape
    if (h, w) == (IMAGE_SIZE, IMAGE_SIZE):
        return image
    interp = cv2.INTER_AREA if h * w > IMAGE_SIZE**2 else cv2.INTER_CUBIC
    return cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=interp)


def resize_restoration(
    r: Restoration, gray: np.ndarray, hole: np.ndarray | None = None, add_detected: bool = False
) -> Restoration:
    """A 512x512 restoration resized back to the size of its input, whose own luminance is `gray` (`own_gray`):
    the colours are resized, the luminance is the input's own outside the hole (exactly: no detail lost to the
    round trip through 512x512) and the resized restoration's inside it. `hole`: the hole mask given at that size,
    which becomes `.mask` as it was given (with the detected hole resized back added, with `add_detected`)."""
    h, w = gray.shape
    if r.restored.shape[:2] == (h, w):
        return r
    mask = mask_back(r.mask, h, w)
    if hole is not None:
        mask = hole | mask if add_detected else hole

    def back(rgb):      # resized; the input's own luminance outside the hole
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_CUBIC)
        out = with_luma(rgb, gray)
        out[mask] = rgb[mask]
        return out

    return Restoration(back(r.restored), mask, back(r.colorized), competition=r.restored)


def own_gray(image: np.ndarray) -> np.ndarray:
    """Any uint8 image (HxW gray, HxWx1, RGB or RGBA) -> its luminance at its own size (PIL luma)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(
            f"images must be uint8 (0-255), got {image.dtype}; e.g. (x * 255).round().astype(np.uint8) "
            "for floats in [0, 1], (x >> 8).astype(np.uint8) for 16-bit"
        )
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))) or min(image.shape[:2]) < 1:
        raise ValueError(f"images must be HxW gray, HxWx3 RGB or HxWx4 RGBA, got shape {image.shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    return gray_of(image[..., :3]) if image.ndim == 3 else image


__all__ = ["Restoration", "Restorer", "colorize", "colorize_chroma", "inpaint", "predict_mask", "predict_masks"]
