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

use safetensors::tensor::Dtype;

use crate::error::Error;

mod convert;

pub use convert::{convert_whisper_file, write_whisper_safetensors};

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

#[cfg(test)]
pub(crate) mod tests;
