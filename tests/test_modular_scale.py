"""Scale path (issue 11, deliverable 8): the same modules around open_clip ViT-B-32 towers (random init)
and a Hugging Face CLIP text encoder built from a small config, run on 2 samples for every task."""
import pytest
import torch

from workbench.methods.modular import TASKS, ModularConfig, ModularModel, TextEncoder, module_flops
from workbench.models import load_model


@pytest.mark.slow
def test_modules_around_vit_b32_and_a_hugging_face_text_encoder(world):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    torch.manual_seed(0)
    torch.set_num_threads(2)
    vit = load_model("ViT-B-32", pretrained=None)  # open_clip architecture, random init
    text_cfg = CLIPTextConfig(vocab_size=49408, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                              num_attention_heads=4, max_position_embeddings=77, projection_dim=512)
    hf_text = CLIPTextModelWithProjection(text_cfg).eval()
    model = ModularModel.from_backend(vit, ModularConfig(shared_layers=2, latents=8, answers=5, classes=3),
                                      text=TextEncoder.from_hf(hf_text.text_model, hf_text.text_projection)).eval()
    assert model.vision.width == 768 and model.text.width == 128 and model.shared_layers == 2
    assert model.universal.blocks[0] is hf_text.text_model.encoder.layers[0]  # shared, not copied

    scenes = world.batch("novel_train", range(2))
    clips = world.clips("novel_train", range(2), frames=2)
    images = vit.resize(scenes.images)
    frames = torch.stack([vit.resize(c) for c in clips.frames])  # (2, 2, 3, 224, 224)
    tokens = model.tokenize(list(clips.captions))
    with torch.no_grad():
        # the text tower really is the Hugging Face model: its pooled projection, through our block loop
        ref = hf_text(input_ids=tokens).text_embeds
        torch.testing.assert_close(model.encode_text(tokens).pooled, ref, rtol=1e-4, atol=1e-4)
        batches = {
            "image_retrieval": {"images": images, "text": model.tokenize(list(scenes.captions))},
            "video_retrieval": {"clips": frames, "text": tokens},
            "captioning": {"clips": frames, "targets": tokens},
            "qa": {"clips": frames, "text": model.tokenize(["which way does the object move?"] * 2),
                   "targets": torch.tensor([1, 4])},
            "classification": {"images": images, "targets": torch.tensor([0, 2])},
        }
        outs = {}
        for task, batch in batches.items():
            outs[task] = out = model.run(task, batch, TASKS[task].path)
            assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss), task
    assert outs["classification"].logits.shape == (2, 3) and outs["qa"].logits.shape == (2, 5)
    emb = outs["video_retrieval"].embeddings
    assert emb["video"].shape == emb["text"].shape == (2, 512)
    assert module_flops(model, "image_retrieval", None, batches["image_retrieval"]) > \
        module_flops(model, "image_retrieval", ("vision", "text"), batches["image_retrieval"])
