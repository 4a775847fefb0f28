"""Independent GPT-2 forward pass in NumPy (float64), the reference Ark's
import is checked against. It reads the Hugging Face layout itself: the
safetensors container by hand (8-byte header length, JSON header, data)
and config.json, and computes as transformers' GPT2LMHeadModel does:
Conv1D layers y = x @ W + b with W stored [in, out], pre-LayerNorm blocks
(eps from config), the tanh GELU, causal attention scaled by 1/sqrt(head
size), output tied to wte.

usage: gpt2_ref.py MODEL_DIR IDS STEPS
  IDS   comma-separated prompt token ids
  STEPS greedy continuation length
prints JSON {"logits": [[...] per prompt position], "greedy": [ids]}
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        raw = body[lo:hi]
        if info["dtype"] == "BF16":
            a = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            a = a.view(np.float32)
        else:
            a = np.frombuffer(raw, dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name.removeprefix("transformer.")] = a.astype(np.float64).reshape(info["shape"])
    return out


def layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def forward(W, cfg, ids):
    T = len(ids)
    C, H = cfg["n_embd"], cfg["n_head"]
    hs = C // H
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    x = W["wte.weight"][ids] + W["wpe.weight"][:T]
    mask = np.triu(np.ones((T, T), dtype=bool), 1)
    for l in range(cfg["n_layer"]):
        p = "h.%d." % l
        h = layernorm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        qkv = h @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]
        q, k, v = np.split(qkv, 3, axis=-1)
        q = q.reshape(T, H, hs).transpose(1, 0, 2)
        k = k.reshape(T, H, hs).transpose(1, 0, 2)
        v = v.reshape(T, H, hs).transpose(1, 0, 2)
        att = q @ k.transpose(0, 2, 1) / np.sqrt(hs)
        att = np.where(mask, -np.inf, att)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        y = (att @ v).transpose(1, 0, 2).reshape(T, C)
        x = x + y @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        h = layernorm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        h = gelu(h @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"])
        x = x + h @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
    x = layernorm(x, W["ln_f.weight"], W["ln_f.bias"], eps)
    return x @ W["wte.weight"].T


def main():
    d, ids, steps = sys.argv[1], [int(s) for s in sys.argv[2].split(",")], int(sys.argv[3])
    with open(d + "/config.json") as f:
        cfg = json.load(f)
    W = load_safetensors(d + "/model.safetensors")
    logits = forward(W, cfg, ids)
    seq = list(ids)
    greedy = []
    for _ in range(steps):
        nxt = int(np.argmax(forward(W, cfg, seq[-cfg["n_positions"] :])[-1]))
        seq.append(nxt)
        greedy.append(nxt)
    json.dump({"logits": logits.tolist(), "greedy": greedy}, sys.stdout)


if __name__ == "__main__":
    main()
