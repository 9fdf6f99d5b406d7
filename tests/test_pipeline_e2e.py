"""The packages meet through files: an mp4 is VAE-encoded and T5-encoded into a latent shard
(mugv-data schema), the training loader reads it back, a DiT training step and a sampling run
consume it, and the VAE decodes the sample. All tiny, random, CPU."""

import itertools

import numpy as np
import torch
from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

from mugv_data import LatentLoader, LatentSample, LatentShardWriter, LoaderConfig
from mugv_data.io.video import encode_mp4, read_frames
from mugv_dit import DiTConfig, MUGDiT
from mugv_dit.flow import FlowSchedule
from mugv_dit.sampling import sample
from mugv_dit.text_encoder import T5TextEncoder
from mugv_vae import MUGVAE, VAEConfig


def _clip(frames=17, h=32, w=48):
    t, y, x = np.meshgrid(np.arange(frames), np.arange(h), np.arange(w), indexing="ij")
    rgb = np.stack([(x * 5 + t * 3) % 256, (y * 7) % 256, (x + y + t * 9) % 256], axis=-1)
    return rgb.astype(np.uint8)


def test_video_to_latent_shard_to_training_and_back(tmp_path):
    torch.manual_seed(0)
    # 1. raw video -> pixels in [-1, 1], [1, 3, T, H, W]
    encode_mp4(_clip(), fps=24.0, path=str(tmp_path / "clip.mp4"))
    frames = read_frames(str(tmp_path / "clip.mp4"))
    pixels = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1

    # 2. encoders: tiny VAE and a tiny T5 with the 4096-wide features of T5-XXL
    vae = MUGVAE(VAEConfig.preset("tiny")).eval()
    t5_dir = tmp_path / "t5"
    T5EncoderModel(
        T5Config(vocab_size=384, d_model=4096, d_kv=8, d_ff=16, num_layers=1, num_heads=2)
    ).save_pretrained(t5_dir)
    ByT5Tokenizer().save_pretrained(t5_dir)
    text_encoder = T5TextEncoder(t5_dir, max_length=32, dtype=torch.float32)
    with torch.no_grad():
        latent = vae.encode(pixels)[0]
    text, mask = text_encoder.encode(["a gradient drifting right"])
    assert latent.shape == (24, 3, 4, 6)

    # 3. latent shard (mugv-data schema) -> training loader
    with LatentShardWriter(tmp_path / "latents") as writer:
        n = int(mask[0].sum())
        writer.write(
            LatentSample(
                key="clip0",
                latent=latent,
                text=text[0, :n],
                text_mask=mask[0, :n],
                caption="a gradient",
                fps=24.0,
                height=32,
                width=48,
                num_frames=17,
                vae_id="tiny-vae",
                text_encoder_id="tiny-t5",
            )
        )
    loader = LatentLoader(
        LoaderConfig(shards=str(tmp_path / "latents"), num_workers=0, vae_id="tiny-vae"),
        rank=0,
        world=1,
    )
    batch = next(iter(loader))
    torch.testing.assert_close(batch["latent"][0], latent)
    assert batch["text_mask"].sum() == n

    # 4. DiT training steps on the batch (released init: no zero head); the loss on a fixed
    #    (noise, t) draw goes down
    dit = MUGDiT(DiTConfig.preset("debug"))
    fs = FlowSchedule()
    x0, noise = batch["latent"], torch.randn_like(batch["latent"])
    t = fs.sample_t(1, fs.shift_ratio(32, 48, 3))
    cond = (batch["text"], batch["text_mask"], batch["fps"])

    def flow_loss():
        pred = dit(fs.add_noise(x0, noise, t), fs.model_timestep(t), *cond)
        return fs.loss(pred, fs.target(x0, noise))

    opt = torch.optim.Adam(dit.parameters(), lr=1e-3)
    losses = []
    for _ in range(4):
        loss = flow_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses

    # 5. I2V-style sampling conditioned on the clean first latent: the sampler's result is
    #    guided Euler on the trained model, then the VAE decodes it to pixels
    dit.eval()
    neg, neg_mask = text_encoder.encode(["ugly"])
    start_noise = torch.randn_like(x0)
    frame_mask = torch.tensor([[False, True, True]])
    z = sample(
        dit,
        fs,
        start_noise,
        *cond[:2],
        neg,
        neg_mask,
        batch["fps"],
        clean=x0,
        frame_mask=frame_mask,
        cfg_scale=4.0,
        steps=3,
    )
    expected = torch.where(frame_mask[:, None, :, None, None], start_noise, x0)
    grid = fs.timesteps(fs.shift_ratio(32, 48, 3), 3).tolist()
    with torch.no_grad():
        for t_now, t_next in itertools.pairwise(grid):
            step_t = torch.full((1,), fs.model_timestep(t_now))
            v_cond = dit(expected, step_t, *cond, frame_mask)
            v_neg = dit(expected, step_t, neg, neg_mask, batch["fps"], frame_mask)
            expected = fs.step(expected, v_neg + 4.0 * (v_cond - v_neg), t_now, t_next)
            expected = torch.where(frame_mask[:, None, :, None, None], expected, x0)
    torch.testing.assert_close(z, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(z[:, :, 0], x0[:, :, 0], rtol=0, atol=0)
    assert (z[:, :, 1:] - start_noise[:, :, 1:]).abs().mean() > 0.1  # the model moved the noise
    with torch.no_grad():
        video = vae.decode(z, num_frames=17)
    assert video.shape == (1, 3, 17, 32, 48) and torch.isfinite(video).all()
