import pytest

from mdseg.taxonomy.recovery import pair, relation_pairs, score, truth_pairs, unified_pairs

TRUTHS = {
    "cityscapes": {"road": ["road", "lane_marking"], "rider": ["bicyclist", "motorcyclist"]},
    "mapillary": {"road": ["road"], "lane marking": ["lane_marking"], "bicyclist": ["bicyclist"]},
}


def test_truth_pairs_are_intersections_across_datasets():
    pairs = truth_pairs(TRUTHS)
    assert pairs == {
        pair(("cityscapes", "road"), ("mapillary", "road")),
        pair(("cityscapes", "road"), ("mapillary", "lane marking")),
        pair(("cityscapes", "rider"), ("mapillary", "bicyclist")),
    }
    assert pair(("cityscapes", "road"), ("mapillary", "road")) not in truth_pairs(
        TRUTHS, same_name=False
    )


def test_unified_pairs_and_score_hand_computed():
    taxonomy = {
        "unified": [
            {"id": 0, "name": "road", "labels": {"cityscapes": "road", "mapillary": "road"}},
            {"id": 1, "name": "rider", "labels": {"cityscapes": "rider", "mapillary": "road"}},
            {"id": 2, "name": "bicyclist", "labels": {"mapillary": "bicyclist"}},
        ]
    }
    predicted = unified_pairs(taxonomy)
    assert len(predicted) == 2
    result = score(predicted, truth_pairs(TRUTHS))
    # one of two predicted pairs is true; one of three true pairs is found
    assert result["precision"] == 0.5 and result["recall"] == round(1 / 3, 4)
    assert result["f1"] == round(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3), 4)


def test_relation_pairs_read_relations_csv(tmp_path):
    path = tmp_path / "relations.csv"
    path.write_text(
        "dataset,class,related_dataset,related_class,score,tau\n"
        "mapillary,bicyclist,cityscapes,rider,0.61,0.48\n"
        "cityscapes,rider,mapillary,bicyclist,0.55,0.48\n"
    )
    assert relation_pairs(path) == {pair(("mapillary", "bicyclist"), ("cityscapes", "rider"))}


def test_a_pair_within_one_dataset_is_refused():
    with pytest.raises(ValueError, match="two datasets"):
        pair(("idd", "curb"), ("idd", "barrier"))


def test_empty_prediction_scores_zero():
    assert score(set(), truth_pairs(TRUTHS))["f1"] == 0.0
