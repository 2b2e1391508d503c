//! CTranslate2 `model.bin` reader and a converter from its Whisper layout to a safetensors file
//! with Hugging Face Whisper tensor names, which `candle-transformers`' whisper model loads.
//!
//! The binary layout (versions 4 to 6, little-endian), as CTranslate2's `model_spec.py` writes it:
//!
//! ```text
//! u32 binary version | string spec name | u32 spec revision
//! u32 n | n × { string name | u8 rank | rank × u32 dim | u8 dtype | u32 byte count | bytes }
//! u32 n | n × { string alias | string variable name }
//! string = u16 length including a NUL | bytes | NUL
//! dtype  = 0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16
//! ```
//!
//! CTranslate2 fuses the attention projections: self-attention `linear_0` is q, k and v stacked
//! on the output axis, cross-attention `linear_1` is k and v. They are split back here. Whisper's
//! k projection has no bias; CTranslate2 stores zeros in its slot, and any constant k bias would
//! not change attention anyway (it adds `q·b` to every score of a query row, which softmax
//! cancels), so that slice is dropped.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use safetensors::tensor::{Dtype, View};

use crate::Error;

/// Element types of CTranslate2 variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ct2Dtype {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl Ct2Dtype {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Ct2Dtype::F32,
            1 => Ct2Dtype::I8,
            2 => Ct2Dtype::I16,
            3 => Ct2Dtype::I32,
            4 => Ct2Dtype::F16,
            5 => Ct2Dtype::Bf16,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            Ct2Dtype::I8 => 1,
            Ct2Dtype::I16 | Ct2Dtype::F16 | Ct2Dtype::Bf16 => 2,
            Ct2Dtype::F32 | Ct2Dtype::I32 => 4,
        }
    }

    /// The safetensors type of a floating-point weight; integer (quantised) weights have none.
    fn float(self) -> Option<Dtype> {
        match self {
            Ct2Dtype::F32 => Some(Dtype::F32),
            Ct2Dtype::F16 => Some(Dtype::F16),
            Ct2Dtype::Bf16 => Some(Dtype::BF16),
            Ct2Dtype::I8 | Ct2Dtype::I16 | Ct2Dtype::I32 => None,
        }
    }
}

/// One named variable, borrowing its bytes from the file.
#[derive(Debug, Clone)]
pub struct Ct2Variable<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: Ct2Dtype,
    pub data: &'a [u8],
}

impl Ct2Variable<'_> {
    /// The value of an integer scalar (flags, head counts), if this is one.
    pub fn scalar_int(&self) -> Option<i64> {
        if !self.shape.is_empty() {
            return None;
        }
        match (self.dtype, self.data) {
            (Ct2Dtype::I8, [b]) => Some(i64::from(i8::from_le_bytes([*b]))),
            (Ct2Dtype::I16, [a, b]) => Some(i64::from(i16::from_le_bytes([*a, *b]))),
            (Ct2Dtype::I32, [a, b, c, d]) => Some(i64::from(i32::from_le_bytes([*a, *b, *c, *d]))),
            _ => None,
        }
    }
}

/// A parsed `model.bin`.
#[derive(Debug, Clone)]
pub struct Ct2Model<'a> {
    pub binary_version: u32,
    pub spec: String,
    pub revision: u32,
    pub variables: Vec<Ct2Variable<'a>>,
    /// `(alias, variable name)`, e.g. the output projection tied to the embeddings.
    pub aliases: Vec<(String, String)>,
}

impl<'a> Ct2Model<'a> {
    pub fn variable(&self, name: &str) -> Option<&Ct2Variable<'a>> {
        self.variables.iter().find(|v| v.name == name)
    }
}

struct Reader<'a, 'p> {
    bytes: &'a [u8],
    pos: usize,
    path: &'p str,
}

impl<'a> Reader<'a, '_> {
    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Ct2Format {
            path: self.path.to_string(),
            offset: self.pos,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end.and_then(|end| self.bytes.get(self.pos..end)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.error(format!(
                "file ends inside {what} ({n} bytes needed, {} left)",
                self.bytes.len().saturating_sub(self.pos)
            ))),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8, Error> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn usize(&mut self, what: &str) -> Result<usize, Error> {
        let v = self.u32(what)?;
        usize::try_from(v).map_err(|_| self.error(format!("{what} {v} does not fit in memory")))
    }

    fn string(&mut self, what: &str) -> Result<String, Error> {
        let len = usize::from(self.u16(what)?);
        let start = self.pos;
        let raw = self.take(len, what)?;
        match raw.split_last() {
            Some((0, text)) => String::from_utf8(text.to_vec()).map_err(|_| Error::Ct2Format {
                path: self.path.to_string(),
                offset: start,
                reason: format!("{what} is not UTF-8"),
            }),
            _ => Err(Error::Ct2Format {
                path: self.path.to_string(),
                offset: start,
                reason: format!("{what} is not NUL-terminated"),
            }),
        }
    }
}

/// Most dimensions a variable may have; real models use at most 3.
const MAX_RANK: u8 = 8;

/// Parse a CTranslate2 model file already in memory. `path` only names the file in errors.
pub fn parse<'a>(bytes: &'a [u8], path: &str) -> Result<Ct2Model<'a>, Error> {
    let mut r = Reader {
        bytes,
        pos: 0,
        path,
    };
    let binary_version = r.u32("the binary version")?;
    if !(4..=6).contains(&binary_version) {
        r.pos = 0;
        return Err(r.error(format!(
            "binary version {binary_version} is not supported (4 to 6 are)"
        )));
    }
    let spec = r.string("the spec name")?;
    let revision = r.u32("the spec revision")?;
    let count = r.usize("the variable count")?;
    // Each variable takes at least 9 bytes: a bound that stops absurd counts before allocating.
    if count > bytes.len() / 9 {
        return Err(r.error(format!(
            "{count} variables cannot fit in {} bytes",
            bytes.len()
        )));
    }
    let mut variables = Vec::with_capacity(count);
    for _ in 0..count {
        let name = r.string("a variable name")?;
        let rank = r.u8("a rank")?;
        if rank > MAX_RANK {
            return Err(r.error(format!("variable {name} has rank {rank}")));
        }
        let mut shape = Vec::with_capacity(usize::from(rank));
        for _ in 0..rank {
            shape.push(r.usize("a dimension")?);
        }
        let type_id = r.u8("a type id")?;
        let dtype = Ct2Dtype::from_id(type_id)
            .ok_or_else(|| r.error(format!("variable {name} has unknown type id {type_id}")))?;
        let num_bytes = r.usize("a byte count")?;
        let expected = shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d));
        if expected != Some(num_bytes) {
            return Err(r.error(format!(
                "variable {name} of shape {shape:?} and type {dtype:?} claims {num_bytes} bytes"
            )));
        }
        let data = r.take(num_bytes, &format!("the data of {name}"))?;
        variables.push(Ct2Variable {
            name,
            shape,
            dtype,
            data,
        });
    }
    let mut aliases = Vec::new();
    for _ in 0..r.usize("the alias count")? {
        let alias = r.string("an alias")?;
        let target = r.string("an alias target")?;
        aliases.push((alias, target));
    }
    if r.pos != bytes.len() {
        return Err(r.error(format!(
            "{} unexpected bytes after the aliases",
            bytes.len() - r.pos
        )));
    }
    Ok(Ct2Model {
        binary_version,
        spec,
        revision,
        variables,
        aliases,
    })
}

/// The hyper-parameters of a Whisper model, named as in Hugging Face's `WhisperConfig`. They
/// are stored as strings in the safetensors metadata the converter writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhisperDims {
    pub num_mel_bins: usize,
    pub d_model: usize,
    pub vocab_size: usize,
    pub max_source_positions: usize,
    pub max_target_positions: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
}

impl WhisperDims {
    fn fields(&self) -> [(&'static str, usize); 9] {
        [
            ("num_mel_bins", self.num_mel_bins),
            ("d_model", self.d_model),
            ("vocab_size", self.vocab_size),
            ("max_source_positions", self.max_source_positions),
            ("max_target_positions", self.max_target_positions),
            ("encoder_layers", self.encoder_layers),
            ("decoder_layers", self.decoder_layers),
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("decoder_attention_heads", self.decoder_attention_heads),
        ]
    }

    /// Read back from safetensors metadata; the error names the first missing or invalid key.
    pub fn from_metadata(meta: &HashMap<String, String>) -> Result<Self, String> {
        let get = |key: &str| -> Result<usize, String> {
            meta.get(key)
                .ok_or_else(|| format!("metadata has no {key}"))?
                .parse::<usize>()
                .map_err(|e| format!("metadata {key}: {e}"))
        };
        Ok(WhisperDims {
            num_mel_bins: get("num_mel_bins")?,
            d_model: get("d_model")?,
            vocab_size: get("vocab_size")?,
            max_source_positions: get("max_source_positions")?,
            max_target_positions: get("max_target_positions")?,
            encoder_layers: get("encoder_layers")?,
            decoder_layers: get("decoder_layers")?,
            encoder_attention_heads: get("encoder_attention_heads")?,
            decoder_attention_heads: get("decoder_attention_heads")?,
        })
    }
}

/// A tensor of the output file: a byte range of a CTranslate2 variable.
struct OutTensor<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    data: &'a [u8],
}

impl View for &OutTensor<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Builds the renamed tensor list, checking every shape against the model's dimensions.
struct Converter<'m, 'a> {
    model: &'m Ct2Model<'a>,
    path: &'m str,
    out: Vec<(String, OutTensor<'a>)>,
    used: usize,
}

impl<'m, 'a> Converter<'m, 'a> {
    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Ct2Format {
            path: self.path.to_string(),
            offset: 0,
            reason: reason.into(),
        }
    }

    fn var(&self, name: &str) -> Result<&'m Ct2Variable<'a>, Error> {
        let model: &'m Ct2Model<'a> = self.model;
        model
            .variable(name)
            .ok_or_else(|| self.error(format!("no variable {name} (is this a Whisper model?)")))
    }

    fn float_var(&self, name: &str, shape: &[usize]) -> Result<(Dtype, &'a [u8]), Error> {
        let v = self.var(name)?;
        let dtype = v.dtype.float().ok_or_else(|| {
            self.error(format!(
                "{name} is {:?}: quantised models are not supported, convert with float16 or float32",
                v.dtype
            ))
        })?;
        if v.shape != shape {
            return Err(self.error(format!(
                "{name} has shape {:?}, expected {shape:?}",
                v.shape
            )));
        }
        Ok((dtype, v.data))
    }

    /// Copy a variable under a new name.
    fn copy(&mut self, from: &str, to: String, shape: &[usize]) -> Result<(), Error> {
        let (dtype, data) = self.float_var(from, shape)?;
        self.used += 1;
        self.out.push((
            to,
            OutTensor {
                dtype,
                shape: shape.to_vec(),
                data,
            },
        ));
        Ok(())
    }

    /// Split a fused projection (`parts` × `d` outputs) into per-part tensors. `to` names each
    /// part's prefix; `None` drops that part's bias (Whisper's bias-free k projection).
    fn split(
        &mut self,
        from: &str,
        d: usize,
        inputs: usize,
        to: &[(String, bool)],
    ) -> Result<(), Error> {
        let parts = to.len();
        let (dtype, weight) = self.float_var(&format!("{from}/weight"), &[parts * d, inputs])?;
        let (bdtype, bias) = self.float_var(&format!("{from}/bias"), &[parts * d])?;
        let w_len = weight.len() / parts;
        let b_len = bias.len() / parts;
        for (i, (prefix, keep_bias)) in to.iter().enumerate() {
            self.out.push((
                format!("{prefix}.weight"),
                OutTensor {
                    dtype,
                    shape: vec![d, inputs],
                    data: &weight[i * w_len..(i + 1) * w_len],
                },
            ));
            if *keep_bias {
                self.out.push((
                    format!("{prefix}.bias"),
                    OutTensor {
                        dtype: bdtype,
                        shape: vec![d],
                        data: &bias[i * b_len..(i + 1) * b_len],
                    },
                ));
            }
        }
        self.used += 2;
        Ok(())
    }

    fn linear(&mut self, from: &str, to: &str, outputs: usize, inputs: usize) -> Result<(), Error> {
        self.copy(
            &format!("{from}/weight"),
            format!("{to}.weight"),
            &[outputs, inputs],
        )?;
        self.copy(&format!("{from}/bias"), format!("{to}.bias"), &[outputs])
    }

    fn layer_norm(&mut self, from: &str, to: &str, d: usize) -> Result<(), Error> {
        self.copy(&format!("{from}/gamma"), format!("{to}.weight"), &[d])?;
        self.copy(&format!("{from}/beta"), format!("{to}.bias"), &[d])
    }

    /// Self-attention, its layer norm and the feed-forward block of one layer.
    fn common_layer(&mut self, from: &str, to: &str, d: usize) -> Result<(), Error> {
        self.split(
            &format!("{from}/self_attention/linear_0"),
            d,
            d,
            &[
                (format!("{to}.self_attn.q_proj"), true),
                (format!("{to}.self_attn.k_proj"), false),
                (format!("{to}.self_attn.v_proj"), true),
            ],
        )?;
        self.linear(
            &format!("{from}/self_attention/linear_1"),
            &format!("{to}.self_attn.out_proj"),
            d,
            d,
        )?;
        self.layer_norm(
            &format!("{from}/self_attention/layer_norm"),
            &format!("{to}.self_attn_layer_norm"),
            d,
        )?;
        let ffn = self
            .var(&format!("{from}/ffn/linear_0/weight"))?
            .shape
            .first()
            .copied();
        let ffn = ffn.ok_or_else(|| self.error(format!("{from}/ffn/linear_0 has no shape")))?;
        self.linear(
            &format!("{from}/ffn/linear_0"),
            &format!("{to}.fc1"),
            ffn,
            d,
        )?;
        self.linear(
            &format!("{from}/ffn/linear_1"),
            &format!("{to}.fc2"),
            d,
            ffn,
        )?;
        self.layer_norm(
            &format!("{from}/ffn/layer_norm"),
            &format!("{to}.final_layer_norm"),
            d,
        )
    }

    fn count_layers(&self, stack: &str) -> usize {
        (0..)
            .take_while(|i| {
                self.model
                    .variable(&format!("{stack}/layer_{i}/ffn/linear_0/weight"))
                    .is_some()
            })
            .count()
    }

    fn heads(&self, name: &str, d: usize) -> Result<usize, Error> {
        let heads = match self.model.variable(name) {
            Some(v) => v
                .scalar_int()
                .and_then(|h| usize::try_from(h).ok())
                .ok_or_else(|| self.error(format!("{name} is not a positive integer scalar")))?,
            // Every Whisper size has 64-dimensional heads.
            None => d / 64,
        };
        if heads == 0 || !d.is_multiple_of(heads) {
            return Err(self.error(format!("{name} = {heads} does not divide d_model {d}")));
        }
        Ok(heads)
    }

    /// A boolean flag that must have the value candle's Whisper implementation assumes.
    fn expect_flag(&self, name: &str, want: bool) -> Result<(), Error> {
        match self.model.variable(name).map(Ct2Variable::scalar_int) {
            None => Ok(()),
            Some(Some(v)) if (v != 0) == want => Ok(()),
            Some(v) => Err(self.error(format!("{name} is {v:?}, only {want} is supported"))),
        }
    }
}

/// Map a parsed CTranslate2 Whisper model to Hugging Face names and write it as safetensors at
/// `out` (through a temporary file in the same folder, renamed into place). Weights keep their
/// type (float16 here); the dimensions go into the file's metadata.
pub fn write_whisper_safetensors(
    model: &Ct2Model<'_>,
    path: &str,
    out: &Path,
) -> Result<WhisperDims, Error> {
    let mut c = Converter {
        model,
        path,
        out: Vec::new(),
        used: 0,
    };
    if model.spec != "WhisperSpec" {
        return Err(c.error(format!("spec is {:?}, not WhisperSpec", model.spec)));
    }
    let emb = c.var("decoder/embeddings/weight")?;
    let [vocab_size, d] = emb.shape[..] else {
        return Err(c.error(format!("embeddings have shape {:?}", emb.shape)));
    };
    let conv1 = c.var("encoder/conv1/weight")?;
    let [_, num_mel_bins, _] = conv1.shape[..] else {
        return Err(c.error(format!("conv1 has shape {:?}", conv1.shape)));
    };
    let first = |name: &str| c.var(name).map(|v| v.shape.first().copied().unwrap_or(0));
    let dims = WhisperDims {
        num_mel_bins,
        d_model: d,
        vocab_size,
        max_source_positions: first("encoder/position_encodings/encodings")?,
        max_target_positions: first("decoder/position_encodings/encodings")?,
        encoder_layers: c.count_layers("encoder"),
        decoder_layers: c.count_layers("decoder"),
        encoder_attention_heads: c.heads("encoder/num_heads", d)?,
        decoder_attention_heads: c.heads("decoder/num_heads", d)?,
    };
    if dims.encoder_layers == 0 || dims.decoder_layers == 0 {
        return Err(c.error("no encoder or decoder layers"));
    }
    c.expect_flag("decoder/scale_embeddings", false)?;
    c.expect_flag("decoder/pre_norm", true)?;
    c.expect_flag("decoder/alibi", false)?;

    let enc = "model.encoder";
    c.copy(
        "encoder/conv1/weight",
        format!("{enc}.conv1.weight"),
        &[d, num_mel_bins, 3],
    )?;
    c.copy("encoder/conv1/bias", format!("{enc}.conv1.bias"), &[d])?;
    c.copy(
        "encoder/conv2/weight",
        format!("{enc}.conv2.weight"),
        &[d, d, 3],
    )?;
    c.copy("encoder/conv2/bias", format!("{enc}.conv2.bias"), &[d])?;
    c.copy(
        "encoder/position_encodings/encodings",
        format!("{enc}.embed_positions.weight"),
        &[dims.max_source_positions, d],
    )?;
    c.layer_norm("encoder/layer_norm", &format!("{enc}.layer_norm"), d)?;
    for i in 0..dims.encoder_layers {
        c.common_layer(
            &format!("encoder/layer_{i}"),
            &format!("{enc}.layers.{i}"),
            d,
        )?;
    }

    let dec = "model.decoder";
    c.copy(
        "decoder/embeddings/weight",
        format!("{dec}.embed_tokens.weight"),
        &[vocab_size, d],
    )?;
    c.copy(
        "decoder/position_encodings/encodings",
        format!("{dec}.embed_positions.weight"),
        &[dims.max_target_positions, d],
    )?;
    c.layer_norm("decoder/layer_norm", &format!("{dec}.layer_norm"), d)?;
    for i in 0..dims.decoder_layers {
        let (from, to) = (format!("decoder/layer_{i}"), format!("{dec}.layers.{i}"));
        c.common_layer(&from, &to, d)?;
        c.linear(
            &format!("{from}/attention/linear_0"),
            &format!("{to}.encoder_attn.q_proj"),
            d,
            d,
        )?;
        c.split(
            &format!("{from}/attention/linear_1"),
            d,
            d,
            &[
                (format!("{to}.encoder_attn.k_proj"), false),
                (format!("{to}.encoder_attn.v_proj"), true),
            ],
        )?;
        c.linear(
            &format!("{from}/attention/linear_2"),
            &format!("{to}.encoder_attn.out_proj"),
            d,
            d,
        )?;
        c.layer_norm(
            &format!("{from}/attention/layer_norm"),
            &format!("{to}.encoder_attn_layer_norm"),
            d,
        )?;
    }
    // The output projection is an alias of the embeddings (tied, as in Hugging Face's files).
    if let Some(v) = model.variable("decoder/projection/weight") {
        if v.data != emb.data {
            return Err(c.error("an untied output projection is not supported"));
        }
    }

    // Every float tensor of the file must have found a place: otherwise the layout is not the
    // one this converter knows, and silently dropping weights would give a broken model.
    let floats = model
        .variables
        .iter()
        .filter(|v| !v.shape.is_empty() && v.dtype.float().is_some())
        .count();
    if c.used != floats {
        let mut names = String::new();
        for v in model.variables.iter().filter(|v| !v.shape.is_empty()) {
            let _ = write!(names, " {}", v.name);
        }
        return Err(c.error(format!(
            "{floats} weight variables but {} were mapped; variables:{names}",
            c.used
        )));
    }

    let mut meta: HashMap<String, String> = dims
        .fields()
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.to_string()))
        .collect();
    meta.insert("format".into(), "pt".into());
    meta.insert(
        "converted_from".into(),
        format!(
            "CTranslate2 {} revision {}, binary version {}",
            model.spec, model.revision, model.binary_version
        ),
    );
    let tensors: Vec<(&str, &OutTensor<'_>)> =
        c.out.iter().map(|(name, t)| (name.as_str(), t)).collect();
    safetensors::serialize_to_file(tensors, Some(meta), out).map_err(|e| {
        Error::SpeechModelFile {
            path: out.display().to_string(),
            source: Box::new(e),
        }
    })?;
    Ok(dims)
}

/// Read `model_bin` (CTranslate2 Whisper) and write `out` (safetensors, Hugging Face names).
pub fn convert_whisper_file(model_bin: &Path, out: &Path) -> Result<WhisperDims, Error> {
    let path = model_bin.display().to_string();
    let bytes = std::fs::read(model_bin).map_err(|e| Error::SpeechModelFile {
        path: path.clone(),
        source: Box::new(e),
    })?;
    let model = parse(&bytes, &path)?;
    write_whisper_safetensors(&model, &path, out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use safetensors::SafeTensors;

    /// Writes the CTranslate2 binary format, for synthetic test models.
    #[derive(Default)]
    pub(crate) struct Ct2Writer {
        vars: Vec<(String, Vec<usize>, u8, Vec<u8>)>,
        aliases: Vec<(String, String)>,
    }

    fn string(out: &mut Vec<u8>, s: &str) {
        let len = u16::try_from(s.len() + 1).expect("short name");
        out.extend(len.to_le_bytes());
        out.extend(s.as_bytes());
        out.push(0);
    }

    impl Ct2Writer {
        /// A float16 variable whose element `i` is `base + i` (exact in f16 for small values).
        pub(crate) fn f16(&mut self, name: &str, shape: &[usize], base: f32) {
            let n: usize = shape.iter().product();
            let data = (0..n)
                .flat_map(|i| f32_to_f16_bits(base + i as f32).to_le_bytes())
                .collect();
            self.vars.push((name.into(), shape.to_vec(), 4, data));
        }

        pub(crate) fn i16_scalar(&mut self, name: &str, v: i16) {
            self.vars
                .push((name.into(), vec![], 2, v.to_le_bytes().to_vec()));
        }

        pub(crate) fn alias(&mut self, alias: &str, target: &str) {
            self.aliases.push((alias.into(), target.into()));
        }

        pub(crate) fn bytes(&self, spec: &str) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend(6u32.to_le_bytes());
            string(&mut out, spec);
            out.extend(3u32.to_le_bytes());
            out.extend(u32::try_from(self.vars.len()).expect("few").to_le_bytes());
            for (name, shape, ty, data) in &self.vars {
                string(&mut out, name);
                out.push(u8::try_from(shape.len()).expect("rank"));
                for d in shape {
                    out.extend(u32::try_from(*d).expect("dim").to_le_bytes());
                }
                out.push(*ty);
                out.extend(u32::try_from(data.len()).expect("len").to_le_bytes());
                out.extend(data);
            }
            out.extend(
                u32::try_from(self.aliases.len())
                    .expect("few")
                    .to_le_bytes(),
            );
            for (a, t) in &self.aliases {
                string(&mut out, a);
                string(&mut out, t);
            }
            out
        }
    }

    /// Exact for the small integers the tests use.
    fn f32_to_f16_bits(v: f32) -> u16 {
        if v == 0.0 {
            return 0;
        }
        let bits = v.to_bits();
        let sign = ((bits >> 16) & 0x8000) as u16;
        let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
        let mant = ((bits >> 13) & 0x3ff) as u16;
        sign | ((exp as u16) << 10) | mant
    }

    /// A Whisper-shaped model with d_model 4, 2 heads, 3 mel bins, 1 layer each side.
    pub(crate) fn tiny_whisper() -> Ct2Writer {
        let (d, ffn, mels) = (4, 8, 3);
        let mut w = Ct2Writer::default();
        w.i16_scalar("encoder/num_heads", 2);
        w.i16_scalar("decoder/num_heads", 2);
        w.f16("encoder/conv1/weight", &[d, mels, 3], 0.0);
        w.f16("encoder/conv1/bias", &[d], 0.0);
        w.f16("encoder/conv2/weight", &[d, d, 3], 0.0);
        w.f16("encoder/conv2/bias", &[d], 0.0);
        w.f16("encoder/position_encodings/encodings", &[6, d], 0.0);
        w.f16("encoder/layer_norm/gamma", &[d], 1.0);
        w.f16("encoder/layer_norm/beta", &[d], 0.0);
        w.f16("decoder/embeddings/weight", &[5, d], 0.0);
        w.f16("decoder/position_encodings/encodings", &[7, d], 0.0);
        w.f16("decoder/layer_norm/gamma", &[d], 1.0);
        w.f16("decoder/layer_norm/beta", &[d], 0.0);
        for stack in ["encoder", "decoder"] {
            let l = format!("{stack}/layer_0");
            w.f16(
                &format!("{l}/self_attention/linear_0/weight"),
                &[3 * d, d],
                0.0,
            );
            w.f16(
                &format!("{l}/self_attention/linear_0/bias"),
                &[3 * d],
                100.0,
            );
            w.f16(&format!("{l}/self_attention/linear_1/weight"), &[d, d], 0.0);
            w.f16(&format!("{l}/self_attention/linear_1/bias"), &[d], 0.0);
            w.f16(&format!("{l}/self_attention/layer_norm/gamma"), &[d], 1.0);
            w.f16(&format!("{l}/self_attention/layer_norm/beta"), &[d], 0.0);
            w.f16(&format!("{l}/ffn/linear_0/weight"), &[ffn, d], 0.0);
            w.f16(&format!("{l}/ffn/linear_0/bias"), &[ffn], 0.0);
            w.f16(&format!("{l}/ffn/linear_1/weight"), &[d, ffn], 0.0);
            w.f16(&format!("{l}/ffn/linear_1/bias"), &[d], 0.0);
            w.f16(&format!("{l}/ffn/layer_norm/gamma"), &[d], 1.0);
            w.f16(&format!("{l}/ffn/layer_norm/beta"), &[d], 0.0);
        }
        let l = "decoder/layer_0/attention";
        w.f16(&format!("{l}/linear_0/weight"), &[d, d], 0.0);
        w.f16(&format!("{l}/linear_0/bias"), &[d], 0.0);
        w.f16(&format!("{l}/linear_1/weight"), &[2 * d, d], 200.0);
        w.f16(&format!("{l}/linear_1/bias"), &[2 * d], 300.0);
        w.f16(&format!("{l}/linear_2/weight"), &[d, d], 0.0);
        w.f16(&format!("{l}/linear_2/bias"), &[d], 0.0);
        w.f16(&format!("{l}/layer_norm/gamma"), &[d], 1.0);
        w.f16(&format!("{l}/layer_norm/beta"), &[d], 0.0);
        w.alias("decoder/projection/weight", "decoder/embeddings/weight");
        w
    }

    fn f16_values(data: &[u8]) -> Vec<f32> {
        data.chunks_exact(2)
            .map(|b| {
                let h = u16::from_le_bytes([b[0], b[1]]);
                let exp = i32::from((h >> 10) & 0x1f);
                let mant = f32::from(h & 0x3ff);
                if exp == 0 {
                    mant * 2f32.powi(-24)
                } else {
                    (1.0 + mant / 1024.0) * 2f32.powi(exp - 15)
                }
            })
            .collect()
    }

    #[test]
    fn parses_header_variables_and_aliases() {
        let bytes = tiny_whisper().bytes("WhisperSpec");
        let m = parse(&bytes, "test.bin").expect("parses");
        assert_eq!(m.binary_version, 6);
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.revision, 3);
        assert_eq!(
            m.aliases,
            vec![(
                "decoder/projection/weight".to_string(),
                "decoder/embeddings/weight".to_string()
            )]
        );
        let heads = m.variable("encoder/num_heads").expect("heads");
        assert_eq!((heads.dtype, heads.scalar_int()), (Ct2Dtype::I16, Some(2)));
        let conv = m.variable("encoder/conv1/weight").expect("conv1");
        assert_eq!(
            (conv.shape.clone(), conv.dtype),
            (vec![4, 3, 3], Ct2Dtype::F16)
        );
        assert_eq!(f16_values(conv.data)[..3], [0.0, 1.0, 2.0]);
    }

    #[test]
    fn malformed_files_are_errors_with_an_offset_not_panics() {
        let good = tiny_whisper().bytes("WhisperSpec");
        // Every truncation fails cleanly.
        for cut in [0, 3, 4, 9, 30, good.len() / 2, good.len() - 1] {
            let err = parse(&good[..cut], "t.bin").expect_err("truncated");
            assert!(matches!(err, Error::Ct2Format { .. }), "{err}");
        }
        let mut bad_version = good.clone();
        bad_version[0] = 9;
        let err = parse(&bad_version, "t.bin").expect_err("version");
        assert!(err.to_string().contains("binary version 9"), "{err}");
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(parse(&trailing, "t.bin").is_err());
        // A byte count that disagrees with the shape.
        let mut w = Ct2Writer::default();
        w.vars.push(("x".into(), vec![2, 2], 4, vec![0; 6]));
        let err = parse(&w.bytes("WhisperSpec"), "t.bin").expect_err("byte count");
        assert!(err.to_string().contains("claims 6 bytes"), "{err}");
        // An absurd dimension product overflows without allocating.
        let mut w = Ct2Writer::default();
        w.vars.push((
            "x".into(),
            vec![u32::MAX as usize, u32::MAX as usize, u32::MAX as usize],
            0,
            vec![],
        ));
        assert!(parse(&w.bytes("WhisperSpec"), "t.bin").is_err());
    }

    #[test]
    fn converts_to_hugging_face_names_splitting_fused_projections() {
        let bytes = tiny_whisper().bytes("WhisperSpec");
        let m = parse(&bytes, "t.bin").expect("parses");
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("model.safetensors");
        let dims = write_whisper_safetensors(&m, "t.bin", &out).expect("converts");
        assert_eq!(
            dims,
            WhisperDims {
                num_mel_bins: 3,
                d_model: 4,
                vocab_size: 5,
                max_source_positions: 6,
                max_target_positions: 7,
                encoder_layers: 1,
                decoder_layers: 1,
                encoder_attention_heads: 2,
                decoder_attention_heads: 2,
            }
        );
        let file = std::fs::read(&out).expect("written");
        let (_, meta) = SafeTensors::read_metadata(&file).expect("metadata");
        let meta = meta.metadata().clone().expect("has metadata");
        assert_eq!(WhisperDims::from_metadata(&meta), Ok(dims));
        let st = SafeTensors::deserialize(&file).expect("safetensors");
        let t = |name: &str| st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let values = |name: &str| f16_values(t(name).data());

        // q, k, v are consecutive row blocks of the fused weight; k has no bias.
        let q = t("model.encoder.layers.0.self_attn.q_proj.weight");
        assert_eq!(q.shape(), [4, 4]);
        assert_eq!(
            values("model.encoder.layers.0.self_attn.k_proj.weight")[0],
            16.0
        );
        assert_eq!(
            values("model.encoder.layers.0.self_attn.v_proj.weight")[0],
            32.0
        );
        assert_eq!(
            values("model.encoder.layers.0.self_attn.q_proj.bias"),
            [100.0, 101.0, 102.0, 103.0]
        );
        assert_eq!(
            values("model.encoder.layers.0.self_attn.v_proj.bias"),
            [108.0, 109.0, 110.0, 111.0]
        );
        assert!(st
            .tensor("model.encoder.layers.0.self_attn.k_proj.bias")
            .is_err());
        // Cross-attention k, v from the fused linear_1.
        assert_eq!(
            values("model.decoder.layers.0.encoder_attn.k_proj.weight")[0],
            200.0
        );
        assert_eq!(
            values("model.decoder.layers.0.encoder_attn.v_proj.weight")[0],
            216.0
        );
        assert_eq!(
            values("model.decoder.layers.0.encoder_attn.v_proj.bias"),
            [304.0, 305.0, 306.0, 307.0]
        );
        // Layer norms: gamma/beta become weight/bias.
        assert_eq!(
            values("model.decoder.layers.0.final_layer_norm.weight"),
            [1.0, 2.0, 3.0, 4.0]
        );
        assert_eq!(t("model.decoder.embed_tokens.weight").shape(), [5, 4]);
        assert_eq!(t("model.encoder.conv1.weight").shape(), [4, 3, 3]);
        assert_eq!(t("model.decoder.layers.0.fc1.weight").shape(), [8, 4]);
        // Encoder: 2 convs × 2, positions, norm × 2; a layer: q 2, k 1, v 2, out 2, three
        // norms × 2, fc1 2, fc2 2. Decoder: tokens, positions, norm × 2; a layer adds to that
        // cross-attention q 2, k 1, v 2, out 2 and its norm × 2.
        assert_eq!(st.len(), 7 + 15 + 4 + 15 + 9);
    }

    #[test]
    fn a_model_that_is_not_whisper_is_refused() {
        let bytes = tiny_whisper().bytes("TransformerSpec");
        let m = parse(&bytes, "t.bin").expect("parses");
        let dir = tempfile::tempdir().expect("tempdir");
        let err = write_whisper_safetensors(&m, "t.bin", &dir.path().join("x")).expect_err("spec");
        assert!(err.to_string().contains("not WhisperSpec"), "{err}");

        let mut w = tiny_whisper();
        w.f16("encoder/mystery/weight", &[2], 0.0);
        let bytes = w.bytes("WhisperSpec");
        let m = parse(&bytes, "t.bin").expect("parses");
        let err = write_whisper_safetensors(&m, "t.bin", &dir.path().join("x")).expect_err("extra");
        assert!(err.to_string().contains("were mapped"), "{err}");
    }
}
