"""Captioning with a vision-language model loaded from a local path (transformers).

Any model served by `AutoModelForImageTextToText` with an `AutoProcessor` works (Qwen2-VL,
BLIP, ...). Chat models get the prompt through the processor's chat template. The middle
keyframe of each clip is captioned, `batch_size` clips per `generate` call, greedy decoding.
Captions given with the input are kept (`caption_source: "input"`). Without `model_path`
the stage only keeps given captions.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from mugv_data.config import CaptionConfig
from mugv_data.stages.base import Clip

log = logging.getLogger(__name__)


class CaptionStage:
    name = "caption"

    def __init__(self, cfg: CaptionConfig) -> None:
        self.cfg = cfg
        self.enabled = cfg.model_path is not None
        if not self.enabled:
            log.warning(
                "caption stage disabled: set caption.model_path to a local VLM to caption clips "
                "(captions given with the inputs are still kept)"
            )
            return
        if not Path(cfg.model_path).exists():
            raise FileNotFoundError(f"caption model {cfg.model_path} does not exist (local only)")
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(cfg.model_path, local_files_only=True)
        self.model = AutoModelForImageTextToText.from_pretrained(
            cfg.model_path, local_files_only=True
        ).eval()
        self.model.to(cfg.device)
        self.source = Path(cfg.model_path).name
        self.text = cfg.prompt
        if getattr(self.processor, "chat_template", None):
            messages = [
                {
                    "role": "user",
                    "content": [{"type": "image"}, {"type": "text", "text": cfg.prompt}],
                }
            ]
            self.text = self.processor.apply_chat_template(messages, add_generation_prompt=True)

    @torch.inference_mode()
    def generate(self, images: list) -> list[str]:
        """RGB uint8 [H, W, 3] images -> one caption each."""
        inputs = self.processor(
            images=images, text=[self.text] * len(images), return_tensors="pt", padding=True
        ).to(self.cfg.device)
        out = self.model.generate(**inputs, max_new_tokens=self.cfg.max_new_tokens, do_sample=False)
        prompt_ids = inputs["input_ids"]
        if out.shape[1] > prompt_ids.shape[1] and torch.equal(
            out[:, : prompt_ids.shape[1]], prompt_ids
        ):
            out = out[:, prompt_ids.shape[1] :]  # decoder-only models echo the prompt
        texts = [t.strip() for t in self.processor.batch_decode(out, skip_special_tokens=True)]
        prompt = self.cfg.prompt.strip().lower()  # prefix-conditioned models (BLIP) echo it as text
        return [t[len(prompt) :].strip() if t.lower().startswith(prompt) else t for t in texts]

    def __call__(self, clips: list[Clip]) -> None:
        todo = [c for c in clips if c.reject is None and c.caption is None]
        if not self.enabled:
            return
        for i in range(0, len(todo), self.cfg.batch_size):
            batch = todo[i : i + self.cfg.batch_size]
            captions = self.generate([c.keyframes[len(c.keyframes) // 2] for c in batch])
            for clip, text in zip(batch, captions, strict=True):
                if text:
                    clip.caption, clip.caption_source = text, self.source
                else:
                    clip.reject_as(self.name, "empty_caption", "the captioner returned no text")
