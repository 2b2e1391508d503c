//! The Whisper network on candle tensors, for one recording at a time, with a key/value cache in
//! the decoder: each decoding step runs one new token through the layers, where
//! `candle-transformers`' Whisper runs the whole sequence again (quadratic in its length; ~3×
//! slower over a 60-token window here). Weights use Hugging Face names (as
//! [`crate::speech::ct2`] writes them); activations are exact (erf) GELU, as in openai-whisper
//! and CTranslate2.

use candle_core::{Result, Tensor, D};
use candle_nn::{
    conv1d, layer_norm, linear, linear_no_bias, Conv1d, Conv1dConfig, LayerNorm, Linear, Module,
    VarBuilder,
};

use crate::speech::ct2::WhisperDims;

const LAYER_NORM_EPS: f64 = 1e-5;

struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    fn load(d: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Attention {
            query: linear(d, d, vb.pp("q_proj"))?,
            key: linear_no_bias(d, d, vb.pp("k_proj"))?,
            value: linear(d, d, vb.pp("v_proj"))?,
            out: linear(d, d, vb.pp("out_proj"))?,
            heads,
        })
    }

    /// `(n, d)` to `(heads, n, d / heads)`.
    fn split(&self, x: &Tensor) -> Result<Tensor> {
        let (n, d) = x.dims2()?;
        x.reshape((n, self.heads, d / self.heads))?
            .transpose(0, 1)?
            .contiguous()
    }

    fn keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            self.split(&self.key.forward(x)?)?,
            self.split(&self.value.forward(x)?)?,
        ))
    }

    /// Scaled dot-product attention of the queries of `x` over split keys and values; `mask`
    /// is added to the scores.
    fn attend(&self, x: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let q = self.split(&self.query.forward(x)?)?;
        let scale = 1.0 / (q.dim(D::Minus1)? as f64).sqrt();
        let mut scores = (q.matmul(&k.t()?)? * scale)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let (heads, n, dh) = (q.dim(0)?, q.dim(1)?, q.dim(2)?);
        let mixed = weights
            .matmul(v)?
            .transpose(0, 1)?
            .contiguous()?
            .reshape((n, heads * dh))?;
        self.out.forward(&mixed)
    }
}

struct Mlp {
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn load(d: usize, vb: &VarBuilder) -> Result<Self> {
        // Whisper's feed-forward width at every size; the loader checks the shapes.
        let hidden = 4 * d;
        Ok(Mlp {
            norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("final_layer_norm"))?,
            fc1: linear(d, hidden, vb.pp("fc1"))?,
            fc2: linear(hidden, d, vb.pp("fc2"))?,
        })
    }

    fn residual(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.fc1.forward(&self.norm.forward(x)?)?.gelu_erf()?;
        x + self.fc2.forward(&h)?
    }
}

struct EncoderLayer {
    norm: LayerNorm,
    attn: Attention,
    mlp: Mlp,
}

/// Audio encoder: two convolutions (the second halves the time axis), position embeddings,
/// pre-norm transformer layers.
pub(super) struct Encoder {
    conv1: Conv1d,
    conv2: Conv1d,
    positions: Tensor,
    layers: Vec<EncoderLayer>,
    norm: LayerNorm,
}

impl Encoder {
    pub(super) fn load(dims: &WhisperDims, vb: VarBuilder) -> Result<Self> {
        let d = dims.d_model;
        let conv = |stride| Conv1dConfig {
            padding: 1,
            stride,
            ..Default::default()
        };
        let layers = (0..dims.encoder_layers)
            .map(|i| {
                let vb = vb.pp(format!("layers.{i}"));
                Ok(EncoderLayer {
                    norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("self_attn_layer_norm"))?,
                    attn: Attention::load(d, dims.encoder_attention_heads, vb.pp("self_attn"))?,
                    mlp: Mlp::load(d, &vb)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Encoder {
            conv1: conv1d(dims.num_mel_bins, d, 3, conv(1), vb.pp("conv1"))?,
            conv2: conv1d(d, d, 3, conv(2), vb.pp("conv2"))?,
            positions: vb.get((dims.max_source_positions, d), "embed_positions.weight")?,
            layers,
            norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("layer_norm"))?,
        })
    }

    /// `(1, n_mels, frames)` log-mel features to `(frames / 2, d)` audio states.
    pub(super) fn forward(&self, mel: &Tensor) -> Result<Tensor> {
        let x = self.conv1.forward(mel)?.gelu_erf()?;
        let x = self.conv2.forward(&x)?.gelu_erf()?;
        let x = x.squeeze(0)?.t()?;
        let positions = self.positions.narrow(0, 0, x.dim(0)?)?;
        let mut x = (x + positions)?;
        for layer in &self.layers {
            let h = layer.norm.forward(&x)?;
            let (k, v) = layer.attn.keys_values(&h)?;
            x = (&x + layer.attn.attend(&h, &k, &v, None)?)?;
            x = layer.mlp.residual(&x)?;
        }
        self.norm.forward(&x)
    }
}

struct DecoderLayer {
    self_norm: LayerNorm,
    self_attn: Attention,
    cross_norm: LayerNorm,
    cross_attn: Attention,
    mlp: Mlp,
}

/// Text decoder; the output projection is the token embedding, transposed.
pub(super) struct Decoder {
    embed: Tensor,
    positions: Tensor,
    layers: Vec<DecoderLayer>,
    norm: LayerNorm,
}

/// Per decoding run: the cross-attention keys and values of the audio, and the self-attention
/// keys and values of the tokens so far.
pub(super) struct DecoderCache {
    cross: Vec<(Tensor, Tensor)>,
    tokens: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl Decoder {
    pub(super) fn load(dims: &WhisperDims, vb: VarBuilder) -> Result<Self> {
        let d = dims.d_model;
        let heads = dims.decoder_attention_heads;
        let layers = (0..dims.decoder_layers)
            .map(|i| {
                let vb = vb.pp(format!("layers.{i}"));
                Ok(DecoderLayer {
                    self_norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("self_attn_layer_norm"))?,
                    self_attn: Attention::load(d, heads, vb.pp("self_attn"))?,
                    cross_norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("encoder_attn_layer_norm"))?,
                    cross_attn: Attention::load(d, heads, vb.pp("encoder_attn"))?,
                    mlp: Mlp::load(d, &vb)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Decoder {
            embed: vb.get((dims.vocab_size, d), "embed_tokens.weight")?,
            positions: vb.get((dims.max_target_positions, d), "embed_positions.weight")?,
            layers,
            norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("layer_norm"))?,
        })
    }

    pub(super) fn max_tokens(&self) -> Result<usize> {
        self.positions.dim(0)
    }

    /// A fresh cache for decoding over `audio` (the encoder's output).
    pub(super) fn start(&self, audio: &Tensor) -> Result<DecoderCache> {
        Ok(DecoderCache {
            cross: self
                .layers
                .iter()
                .map(|l| l.cross_attn.keys_values(audio))
                .collect::<Result<_>>()?,
            tokens: self.layers.iter().map(|_| None).collect(),
            len: 0,
        })
    }

    /// Run `tokens` (following those already in `cache`) through the decoder and return the
    /// logits of the next token, `(vocab,)`.
    pub(super) fn step(&self, cache: &mut DecoderCache, tokens: &[u32]) -> Result<Tensor> {
        let n = tokens.len();
        let offset = cache.len;
        if n == 0 || offset + n > self.max_tokens()? {
            candle_core::bail!("{n} tokens after {offset} do not fit the decoder's context");
        }
        let ids = Tensor::new(tokens, self.embed.device())?;
        let mut x = (self.embed.index_select(&ids, 0)? + self.positions.narrow(0, offset, n)?)?;
        // Causal mask among the new tokens (none for the usual single token).
        let mask = if n > 1 {
            let m: Vec<f32> = (0..n)
                .flat_map(|i| {
                    (0..offset + n).map(move |j| {
                        if j > offset + i {
                            f32::NEG_INFINITY
                        } else {
                            0.0
                        }
                    })
                })
                .collect();
            Some(Tensor::from_vec(m, (n, offset + n), self.embed.device())?)
        } else {
            None
        };
        for ((layer, (ck, cv)), kv) in self
            .layers
            .iter()
            .zip(&cache.cross)
            .zip(cache.tokens.iter_mut())
        {
            let h = layer.self_norm.forward(&x)?;
            let (k, v) = layer.self_attn.keys_values(&h)?;
            let (k, v) = match kv.take() {
                Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 1)?, Tensor::cat(&[&pv, &v], 1)?),
                None => (k, v),
            };
            x = (&x + layer.self_attn.attend(&h, &k, &v, mask.as_ref())?)?;
            *kv = Some((k, v));
            let h = layer.cross_norm.forward(&x)?;
            x = (&x + layer.cross_attn.attend(&h, ck, cv, None)?)?;
            x = layer.mlp.residual(&x)?;
        }
        cache.len += n;
        let last = self.norm.forward(&x.narrow(0, n - 1, 1)?)?;
        last.matmul(&self.embed.t()?)?.squeeze(0)
    }
}
