"""Reading prepared datasets (the results contract) into tensors, with the papers' augmentations."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from mdseg.datasets.real.png import read_label
from mdseg.errors import DamagedFile
from mdseg.io import IGNORE_ID, REBUILD, read_manifest, read_split_list

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


class SplitDataset(torch.utils.data.Dataset):
    """One split of one prepared dataset: uint8 image and int64 label map per item.

    Every reader of a split (training, evaluation, statistics passes) goes through here, so the
    list is checked once, on construction, against the count and sha256 the manifest records,
    and an empty split is refused.
    """

    def __init__(self, dataset_dir: str | Path, split: str) -> None:
        self.dir = Path(dataset_dir)
        self.remedy = REBUILD.format(folder=self.dir)
        manifest = self.dir / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(
                f"{manifest}: not found, so {self.dir} holds no complete dataset (the manifest "
                "is written last); check the dataset key and --datasets-dir, or build it: "
                "mdseg prepare (or mdseg synth), or the workflow"
            )
        self.manifest = read_manifest(manifest)
        if split not in self.manifest["splits"]:
            raise KeyError(
                f"{self.dir}: no split {split!r}; it has {sorted(self.manifest['splits'])}"
            )
        entry = self.manifest["splits"][split]
        self.pairs = read_split_list(
            self.dir / entry["list"], entry["count"], self.manifest["checksums"][entry["list"]]
        )
        self.classes: list[str] = self.manifest["classes"]

    def __len__(self) -> int:
        return len(self.pairs)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image ``[H, W, 3]`` uint8 RGB and label ``[H, W]`` ids, checked against the manifest.

        Images decode with OpenCV (several times faster than Pillow on 2 MP PNG/JPEG); labels
        with :func:`read_label` (OpenCV for greyscale, Pillow keeps palette indices).
        """
        image_path, label_path = self.pairs[index]
        bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DamagedFile(f"{image_path}: missing or not a readable image; {self.remedy}")
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        label = read_label(Path(label_path), self.remedy)
        if label.ndim != 2:
            raise DamagedFile(
                f"{label_path}: expected a 2-D id map, got shape {label.shape}; {self.remedy}"
            )
        if label.shape != image.shape[:2]:
            raise DamagedFile(
                f"{label_path}: label size {label.shape} != image {image.shape[:2]} of "
                f"{image_path}; {self.remedy}"
            )
        bad = (label >= len(self.classes)) & (label != IGNORE_ID)
        if bad.any():
            raise DamagedFile(
                f"{label_path}: ids {sorted(set(label[bad].tolist()))} are not classes "
                f"0..{len(self.classes) - 1} of {self.dir.name} nor the ignore id {IGNORE_ID}; "
                f"{self.remedy}"
            )
        return image, label

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Image ``[3, H, W]`` uint8 and label ``[H, W]`` int64 (normalise on the device)."""
        image, label = self.read(index)
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(
            label.astype(np.int64)
        )


def normalise_images(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 RGB ``[..., 3, H, W]`` to ImageNet-normalised ``dtype``, on the images' device.

    Done after the host-to-device copy, so the copy moves a quarter of the bytes of float32.
    """
    mean = MEAN.to(images.device, torch.float32)
    std = STD.to(images.device, torch.float32)
    return ((images.float() / 255.0 - mean) / std).to(dtype)


def same_size_batches(
    data: SplitDataset,
    batch_size: int = 8,
    indices: Iterable[int] | None = None,
    workers: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Items of ``data`` (all, or ``indices``) in order, stacked while their size agrees (real
    datasets mix image sizes): uint8 images and int64 labels, for evaluation and statistics
    passes. ``workers`` > 0 decodes in that many DataLoader processes, in the same order."""
    picked = list(range(len(data)) if indices is None else indices)
    items: Iterable[tuple[torch.Tensor, torch.Tensor]] = (data[i] for i in picked)
    if workers > 0:
        items = torch.utils.data.DataLoader(
            torch.utils.data.Subset(data, picked),
            batch_size=None,
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            prefetch_factor=4,
        )
    images: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    for image, label in items:
        if images and (len(images) == batch_size or label.shape != labels[0].shape):
            yield torch.stack(images), torch.stack(labels)
            images, labels = [], []
        images.append(image)
        labels.append(label)
    if images:
        yield torch.stack(images), torch.stack(labels)


# The ImageNet mean as uint8: it normalises to ~0, the value the float pipeline padded crops with
# (MSeg's semseg training code pads images with the mean colour as well; UniSeg's code never pads
# a training crop, see ``Augment.crop_fit``).
PAD_COLOUR = tuple(round(255 * m) for m in MEAN.flatten().tolist())


# Where a rotation turns the crop's corners out of view: black, as UniSeg's ``Rotate``
# (numpee/UniSeg transformations/joint_transforms.py: PIL ``Image.rotate`` with no fill colour).
ROTATE_FILL = (0, 0, 0)


def _resample(
    source: np.ndarray, matrix: np.ndarray, size: tuple[int, int], interpolation: int
) -> np.ndarray:
    """``source`` sampled where ``matrix`` maps each output pixel (``size`` = width, height),
    with ``interpolation`` and the edge pixels repeated beyond the source."""
    flags = interpolation | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(source, matrix, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class Draw:
    """The random choices of one :class:`Augment` call.

    ``scale``: source pixels to rescaled pixels (the random scale times the short-side factor);
    ``top``, ``left``: the crop window's corner in the rescaled frame (its side is
    :meth:`Augment.window`); ``angle``: degrees,
    counter-clockwise about the crop centre; ``sigma``: Gaussian blur of the image (0: none).
    """

    scale: float
    top: int
    left: int
    flip: bool
    angle: float = 0.0
    sigma: float = 0.0


CROP_FITS = ("pad", "shrink")


@dataclass(frozen=True)
class Augment:
    """Random rescale, random crop (padded, or shrunk to fit), rotation, horizontal flip and blur.

    ``short_side`` first brings every image's shorter side to that many pixels (UniSeg: 1080,
    so datasets of different resolutions give crops of one scale); the random scale applies on
    top of it, in the same single resampling.

    Crop first: the whole image is never rescaled. The crop window is drawn in the rescaled
    frame (the draws and frame size are those of rescaling the whole image, then cropping),
    mapped back to the source and only its ``crop x crop`` pixels are resampled, on uint8:
    bilinear for the image (half-pixel centres, edge pixels repeated, like
    ``F.interpolate(align_corners=False)``), centre-aligned nearest neighbour for the label.
    Where the window leaves the rescaled image the crop holds :data:`PAD_COLOUR` and ignore.

    ``crop_fit`` says what happens when the rescaled image is smaller than the crop: ``pad``
    (the default; MSeg's semseg code) pads it as above; ``shrink`` is UniSeg's rule (numpee/UniSeg
    transformations/joint_transforms.py: ``RandomSizeAndCrop`` builds ``RandomCrop`` with
    ``nopad=True``, then base_augmentation.yaml's ``resize`` step): the window becomes the square
    of the rescaled image's short side, placed uniformly along the long side, and is resampled up
    to ``crop x crop`` (bilinear image, nearest label), so no pixel is padding. The authors crop,
    then resize; here it is the same single resampling, the window scaled to the crop. With the
    rescaled image at least the crop on both sides the two rules draw and crop the same.

    UniSeg's training augmentation (numpee/UniSeg configs/augmentation/base_augmentation.yaml,
    transformations/__init__.py) is: scale, crop, rotate by an angle uniform in ±10° about the
    crop centre (``joint_transforms.Rotate``), flip, then Gaussian blur of the image only with
    probability 0.5 and a radius (PIL's standard deviation) drawn from 0-4
    (``single_transforms.GaussianBlur``). ``rotate_degrees`` and ``blur_probability`` (0: off,
    the paper's §4.1 names only scaling and flipping) switch these on. The rotation is folded
    into the crop's resampling (one affine: scale, rotate, translate; the authors resample
    twice): crop pixels turned out of view are :data:`ROTATE_FILL` (the authors' black) and
    ignore. The authors' label fill is raw id 0, which is ignore in Cityscapes but road in BDD
    and IDD and bird in Mapillary; ignore is the fill that means "no label" in every dataset.
    The blur (``cv2.GaussianBlur``, edges repeated as PIL's box passes do) runs on the uint8
    crop after the flip, as the authors' input transform runs after the joint ones.
    """

    crop: int
    scale: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    short_side: int | None = None
    rotate_degrees: float = 0.0
    blur_probability: float = 0.0
    blur_sigmas: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 4.0)
    crop_fit: str = "pad"

    def __post_init__(self) -> None:
        if self.crop_fit not in CROP_FITS:
            raise ValueError(
                f"training.crop_fit: expected one of {CROP_FITS}, got {self.crop_fit!r}"
            )

    def window(self, rows: int, cols: int) -> int:
        """The crop window's side in the ``rows x cols`` rescaled frame: the crop, or with
        ``shrink`` and a frame shorter than the crop, the frame's short side."""
        return min(rows, cols, self.crop) if self.crop_fit == "shrink" else self.crop

    def __call__(
        self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """``[H, W, 3]`` uint8 image and ``[H, W]`` label to ``[crop, crop, 3]`` and ``[crop,
        crop]`` (label dtype kept), with choices from :meth:`draw`."""
        return self.apply(image, label, self.draw(label.shape, rng))

    def draw(self, shape: tuple[int, ...], rng: np.random.Generator) -> Draw:
        """Draws scale, top, left, flip from ``rng`` in that order, then the angle (only when
        ``rotate_degrees``), then the blur (only when ``blur_probability``): with those off the
        draws, and so the batch stream, are those of the pipeline without them."""
        h, w = shape
        s = rng.uniform(*self.scale)
        if self.short_side:
            s *= self.short_side / min(h, w)
        rows, cols = max(1, round(h * s)), max(1, round(w * s))  # the rescaled frame
        side = self.window(rows, cols)
        top = int(rng.integers(0, max(rows, side) - side + 1))
        left = int(rng.integers(0, max(cols, side) - side + 1))
        flip = self.flip and bool(rng.random() < 0.5)
        angle = 0.0
        if self.rotate_degrees:
            angle = float(rng.uniform(-self.rotate_degrees, self.rotate_degrees))
        sigma = 0.0
        if self.blur_probability and rng.random() < self.blur_probability:
            sigma = float(self.blur_sigmas[int(rng.integers(len(self.blur_sigmas)))])
        return Draw(s, top, left, flip, angle, sigma)

    def apply(
        self, image: np.ndarray, label: np.ndarray, draw: Draw
    ) -> tuple[np.ndarray, np.ndarray]:
        """The crop of ``image`` and ``label`` that ``draw`` describes."""
        h, w = label.shape
        rows, cols = max(1, round(h * draw.scale)), max(1, round(w * draw.scale))
        fy, fx = h / rows, w / cols  # source pixels per rescaled pixel
        top, left = draw.top, draw.left
        side = self.window(rows, cols)
        k = side / self.crop  # rescaled pixels per crop pixel: 1 but for a shrunk window
        # crop pixels inside the frame (a shrunk window always lies inside it)
        vh = self.crop if rows - top >= side else rows - top
        vw = self.crop if cols - left >= side else cols - left
        # crop pixel (x, y) samples the source at ((left + (x + 0.5) * k) * fx - 0.5, ...)
        warp = np.array(
            [[k * fx, 0.0, (left + 0.5 * k) * fx - 0.5], [0.0, k * fy, (top + 0.5 * k) * fy - 0.5]]
        )
        if draw.angle:
            out_image, out_label = self._rotated(image, label, warp, draw.angle, (vh, vw))
        else:
            window = _resample(image, warp, (vw, vh), cv2.INTER_LINEAR)
            src_rows = (top + (np.arange(vh) + 0.5) * k) * fy
            src_cols = (left + (np.arange(vw) + 0.5) * k) * fx
            src_rows = np.minimum(src_rows.astype(np.intp), h - 1)
            src_cols = np.minimum(src_cols.astype(np.intp), w - 1)
            window_label = label.take(src_rows, 0).take(src_cols, 1)
            if (vh, vw) == (self.crop, self.crop):
                out_image, out_label = window, window_label
            else:
                out_image = np.empty((self.crop, self.crop, 3), np.uint8)
                out_image[:] = PAD_COLOUR
                out_image[:vh, :vw] = window
                out_label = np.full((self.crop, self.crop), IGNORE_ID, label.dtype)
                out_label[:vh, :vw] = window_label
        if draw.flip:
            out_image, out_label = cv2.flip(out_image, 1), cv2.flip(out_label, 1)
        if draw.sigma:
            out_image = cv2.GaussianBlur(
                out_image, (0, 0), draw.sigma, borderType=cv2.BORDER_REPLICATE
            )
        return out_image, out_label

    def _rotated(
        self,
        image: np.ndarray,
        label: np.ndarray,
        warp: np.ndarray,
        angle: float,
        inside: tuple[int, int],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The crop that ``warp`` (crop pixel to source) resamples, turned ``angle`` degrees
        counter-clockwise about its centre, in one resampling of the source. An output pixel
        takes the crop pixel nearest to its rotated-back position: beyond the crop it is
        :data:`ROTATE_FILL` and ignore; in the crop but beyond ``inside`` (the rows and columns
        of the rescaled frame) it is :data:`PAD_COLOUR` and ignore, as if padded, then turned.
        """
        centre = (self.crop - 1) / 2
        back = cv2.getRotationMatrix2D((centre, centre), -angle, 1.0)  # output -> crop pixel
        total = np.hstack([warp[:, :2] @ back[:, :2], warp[:, :2] @ back[:, 2:] + warp[:, 2:]])
        out_image = _resample(image, total, (self.crop, self.crop), cv2.INTER_LINEAR)
        # OpenCV's nearest rounds the source position (floor(x + 0.5)): the centre-aligned rule
        # of the unrotated path; it resamples 8- and 16-bit ids, other ids go through float32
        ids = label if label.dtype in (np.uint8, np.uint16) else label.astype(np.float32)
        out_label = _resample(ids, total, (self.crop, self.crop), cv2.INTER_NEAREST)
        out_label = out_label.astype(label.dtype, copy=False)
        # where each output pixel's nearest crop pixel lies: 2 in the frame, 1 padding, 0 beyond
        region = np.ones((self.crop, self.crop), np.uint8)
        region[: inside[0], : inside[1]] = 2
        region = cv2.warpAffine(
            region,
            back,
            (self.crop, self.crop),
            flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        out_label[region != 2] = IGNORE_ID
        out_image[region == 0] = ROTATE_FILL
        out_image[region == 1] = PAD_COLOUR
        return out_image, out_label
