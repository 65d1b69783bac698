"""Predictions in the WildDash 2 benchmark's submission format (UniSeg Table 4).

WildDash 2 keeps its test labels on its server (wilddash.cc); a submission is an archive of one
8-bit PNG per test image, at the image's own resolution and named after it, whose pixels are
WildDash 2 label ids. Those ids extend Cityscapes' ``labelIds`` (road 7 ... bicycle 33, not the
19 ``trainIds``) with WildDash 2's extra classes (pickup 34, van 35, billboard 36, street light
37, road marking 38, ...), as listed in the WildDash 2 label policy that the benchmark's
maintainers publish with their scripts (``wd2_unified_label_policy.json``). 0 is "unlabeled".

The model's classes are matched to those ids by name (below); as in UniSeg's evaluation, the
argmax runs over the matched classes only, so every pixel gets a WildDash 2 class.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import torch
from PIL import Image

from mdseg.build import load_model, resolve_device
from mdseg.inference import Inference, predictions
from mdseg.io import atomic_path
from mdseg.label_space import normalise
from mdseg.progress import progress

# WildDash 2 label id of each model class name we can submit (Cityscapes labelIds + WD2 extras);
# Mapillary / IDD names join the WD2 class they are folded into by the WD2 label policy.
WD2_IDS: dict[str, int] = {
    "ego vehicle": 1,
    "road": 7,
    "sidewalk": 8,
    "building": 11,
    "wall": 12,
    "fence": 13,
    "guard rail": 14,
    "pole": 17,
    "traffic light": 19,
    "traffic sign": 20,
    "vegetation": 21,
    "terrain": 22,
    "sky": 23,
    "person": 24,
    "rider": 25,
    "car": 26,
    "truck": 27,
    "bus": 28,
    "train": 31,
    "on rails": 31,
    "motorcycle": 32,
    "bicycle": 33,
    "billboard": 36,
    "street light": 37,
    "lane marking - general": 38,
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def wd2_channels(classes: list[str]) -> tuple[list[int], torch.Tensor]:
    """Model class ids with a WildDash 2 id, and those ids (same order)."""
    picked = [(j, WD2_IDS[normalise(n)]) for j, n in enumerate(classes) if normalise(n) in WD2_IDS]
    if not picked:
        raise ValueError(f"no model class has a WildDash 2 id; model classes: {classes}")
    return [j for j, _ in picked], torch.tensor([i for _, i in picked], dtype=torch.uint8)


def export_wilddash(
    model_path: Path,
    images_dir: Path,
    out_dir: Path,
    inference: Inference | None = None,
    device: str = "auto",
) -> Path:
    """Write ``<out_dir>/<image stem>.png`` for every image of ``images_dir`` and zip them.

    Images are scored as ``inference`` says (default: UniSeg's 1080 rows, whole image) and the
    prediction is made at the image's own size, chunk of rows by chunk. Returns the archive
    (``<out_dir>.zip``) to upload.
    """
    inference = inference or Inference(resize_height=1080)
    images = sorted(p for p in Path(images_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"{images_dir}: no {'/'.join(IMAGE_SUFFIXES)} images")
    dev = resolve_device(device)
    method, model, _ = load_model(model_path, str(dev))
    channels, ids = wd2_channels(method.classes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def score(batch: torch.Tensor) -> torch.Tensor:
        return method.scores(model, batch)[:, channels]

    def to_ids(scores: torch.Tensor) -> torch.Tensor:
        return ids[scores.argmax(dim=1).cpu()]

    written = []
    with torch.inference_mode(), progress(len(images), "wilddash2 export", unit="img") as bar:
        for path in images:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"{path}: not a readable image")
            rgb = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)
            size = tuple(rgb.shape[-2:])
            pred = predictions(score, rgb[None].to(dev), size, inference, to_ids)[0].numpy()
            target = out_dir / f"{path.stem}.png"
            with atomic_path(target) as tmp:
                Image.fromarray(pred).save(tmp, format="PNG")
            written.append(target)
            bar.update()
    archive = out_dir.with_suffix(".zip")
    with atomic_path(archive) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for target in written:
            zf.write(target, arcname=target.name)
    return archive
