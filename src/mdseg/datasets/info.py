"""What every stage needs to know about a dataset key, independent of where its pixels come from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    key: str
    code: str  # one letter, used in experiment ids such as ``multi_ce-hrnet_w18_small_v2-C+I+B+M``
    display: str
    domain: str  # driving | indoor | everyday


DATASETS: dict[str, DatasetInfo] = {
    info.key: info
    for info in (
        DatasetInfo("cityscapes", "C", "Cityscapes", "driving"),
        DatasetInfo("mapillary", "M", "Mapillary Vistas", "driving"),
        DatasetInfo("bdd", "B", "BDD100K", "driving"),
        DatasetInfo("idd", "I", "IDD", "driving"),
        DatasetInfo("sunrgbd", "S", "SUN RGB-D", "indoor"),
        DatasetInfo("ade20k", "A", "ADE20K", "everyday"),
        DatasetInfo("coco", "O", "COCO panoptic", "everyday"),
        # the original WildDash (v1): UniSeg Tables 1-2 (as MSeg); WildDash 2 is Table 4's
        DatasetInfo("wilddash", "D", "WildDash", "driving"),
        DatasetInfo("wilddash2", "W", "WildDash 2", "driving"),
        DatasetInfo("kitti", "K", "KITTI", "driving"),
        DatasetInfo("camvid", "V", "CamVid", "driving"),
        DatasetInfo("scannet", "N", "ScanNet-20", "indoor"),
        DatasetInfo("voc", "P", "PASCAL VOC 2012", "everyday"),
        DatasetInfo("context", "X", "PASCAL Context", "everyday"),
    )
}


def code_of(key: str) -> str:
    if key not in DATASETS:
        raise KeyError(f"unknown dataset {key!r}; known: {', '.join(DATASETS)}")
    return DATASETS[key].code


def key_of_code(code: str) -> str:
    for info in DATASETS.values():
        if info.code == code:
            return info.key
    raise KeyError(
        f"unknown dataset code {code!r}; known: {', '.join(i.code for i in DATASETS.values())}"
    )
