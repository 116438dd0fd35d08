"""Study 04's task datasets on the world: captions name the true motion, answers match the scene."""
import pytest
import torch

from workbench.data import modular_tasks as mt
from workbench.world import ALL_CLASSES, COLOR_NAMES, DIRECTIONS, World

WORLD = World()
IDX = range(12)


def fake_tokenize(texts):  # a stand-in tokenizer: one id per word, padded to 8
    ids = [[len(w) for w in t.split()][:8] for t in texts]
    return torch.tensor([x + [0] * (8 - len(x)) for x in ids])


def test_video_captions_name_the_direction_the_object_moves():
    s = mt.video_retrieval(WORLD, "novel_test", IDX, frames=4, tokenize=fake_tokenize)
    clips = WORLD.clips("novel_test", IDX, frames=4)
    assert s.media.shape == (12, 4, 3, 64, 64) and torch.equal(s.media, clips.frames)
    moved = 0
    for i, caption in enumerate(s.captions):
        word = DIRECTIONS[int(s.direction[i])]
        assert f" moving {word} " in caption
        ys, xs = (clips.masks[i, 0].nonzero().float().mean(0), clips.masks[i, -1].nonzero().float().mean(0))
        dy, dx = (xs - ys).tolist()  # centroid shift (rows, cols) from first to last frame
        seen = ("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("down" if dy > 0 else "up")
        moved += seen == word
    assert moved == 12  # the caption's direction is the mask centroid's motion
    assert set(s.batch()) == {"clips", "text"} and s.batch()["text"].shape == (12, 8)


def test_captioning_slots_and_targets():
    s = mt.captioning(WORLD, "novel_test", IDX, frames=3, tokenize=fake_tokenize)
    clips = WORLD.clips("novel_test", IDX, frames=3)
    assert s.captions == clips.captions  # the slot template is the world's clip caption
    for i, slots in enumerate(s.slots):
        assert set(slots) == set(mt.SLOTS)
        assert slots["object"] == ALL_CLASSES[int(clips.labels[i])]
        assert slots["direction"] == DIRECTIONS[int(clips.direction[i])]
        assert mt.slot_caption(slots) == s.captions[i]
    img = mt.captioning(WORLD, "novel_test", IDX, media="image")
    assert img.media.ndim == 4 and "direction" not in img.slots[0] and "moving" not in img.captions[0]
    assert set(s.batch()) == {"clips", "targets"}


def test_qa_answers_match_the_scene_and_kinds_balance():
    s = mt.qa(WORLD, "novel_test", IDX, frames=3, tokenize=fake_tokenize)
    lat = WORLD.latents("novel_test", IDX)
    clips = WORLD.clips("novel_test", IDX, frames=3)
    assert [s.kinds.count(k) for k in mt.QUESTION_KINDS] == [4, 4, 4]
    for i, kind in enumerate(s.kinds):
        answer = mt.ANSWERS[int(s.answers[i])]
        truth = {"colour": COLOR_NAMES[int(lat.color[i])], "shape": ALL_CLASSES[int(clips.labels[i])],
                 "direction": DIRECTIONS[int(clips.direction[i])]}[kind]
        assert answer == truth and mt.ANSWER_KIND[int(s.answers[i])] == kind
        assert s.questions[i] == mt.QUESTIONS[kind]
    b = s.batch()
    assert b["text"].shape == (12, 8) and torch.equal(b["targets"], s.answers)


def test_classification_and_image_retrieval():
    c = mt.classification(WORLD, "novel_test", IDX)
    scenes = WORLD.batch("novel_test", IDX)
    assert torch.equal(c.images, scenes.images) and torch.equal(c.labels, scenes.labels)
    with pytest.raises(ValueError, match="no clips"):
        c.batch("clips")
    moving = mt.classification(WORLD, "novel_test", IDX, frames=2)
    assert moving.clips.shape == (12, 2, 3, 64, 64) and torch.equal(moving.batch("clips")["targets"], c.labels)
    r = mt.image_retrieval(WORLD, "novel_test", IDX, tokenize=fake_tokenize)
    assert r.captions == scenes.captions and set(r.batch()) == {"images", "text"}


def test_same_arguments_same_sets():
    a = mt.task_sets(WORLD, "heldout", range(5, 9), frames=2)
    b = mt.task_sets(World(), "heldout", range(5, 9), frames=2)
    assert set(a) == set(mt.TASK_NAMES)
    assert torch.equal(a["qa"].clips, b["qa"].clips) and a["captioning"].captions == b["captioning"].captions


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="task='vqa'; accepted: image_retrieval"):
        mt.task_set("vqa", WORLD, "heldout", IDX)
    with pytest.raises(ValueError, match="frames=1"):
        mt.video_retrieval(WORLD, "heldout", IDX, frames=1)
    with pytest.raises(ValueError, match="media='audio'"):
        mt.captioning(WORLD, "heldout", IDX, media="audio")
    with pytest.raises(ValueError, match="tokenize=model.tokenize"):
        mt.qa(WORLD, "heldout", IDX, frames=2).batch()
    with pytest.raises(ValueError, match="'pink' is not a colour answer"):
        mt.answer_index("colour", "pink")
