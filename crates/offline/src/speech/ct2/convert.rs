//! The converter from CTranslate2's Whisper layout to a safetensors file with Hugging Face
//! Whisper tensor names: fused projections split, every shape checked against the model's
//! dimensions, and every weight accounted for.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use safetensors::tensor::{Dtype, View};

use super::{parse, Ct2Model, Ct2Variable, WhisperDims};
use crate::error::Error;

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

impl Converter<'_, '_> {
    /// The model's dimensions, read from its shapes and head counts; a model that is not a
    /// Whisper candle can run (another spec, no layers, flags it does not implement) is refused.
    fn dims(&self) -> Result<WhisperDims, Error> {
        if self.model.spec != "WhisperSpec" {
            return Err(self.error(format!("spec is {:?}, not WhisperSpec", self.model.spec)));
        }
        let emb = self.var("decoder/embeddings/weight")?;
        let [vocab_size, d] = emb.shape[..] else {
            return Err(self.error(format!("embeddings have shape {:?}", emb.shape)));
        };
        let conv1 = self.var("encoder/conv1/weight")?;
        let [_, num_mel_bins, _] = conv1.shape[..] else {
            return Err(self.error(format!("conv1 has shape {:?}", conv1.shape)));
        };
        let first = |name: &str| {
            self.var(name)
                .map(|v| v.shape.first().copied().unwrap_or(0))
        };
        let dims = WhisperDims {
            num_mel_bins,
            d_model: d,
            vocab_size,
            max_source_positions: first("encoder/position_encodings/encodings")?,
            max_target_positions: first("decoder/position_encodings/encodings")?,
            encoder_layers: self.count_layers("encoder"),
            decoder_layers: self.count_layers("decoder"),
            encoder_attention_heads: self.heads("encoder/num_heads", d)?,
            decoder_attention_heads: self.heads("decoder/num_heads", d)?,
        };
        if dims.encoder_layers == 0 || dims.decoder_layers == 0 {
            return Err(self.error("no encoder or decoder layers"));
        }
        self.expect_flag("decoder/scale_embeddings", false)?;
        self.expect_flag("decoder/pre_norm", true)?;
        self.expect_flag("decoder/alibi", false)?;
        Ok(dims)
    }

    /// The encoder: two convolutions, positions, the final norm and its layers.
    fn encoder(&mut self, dims: &WhisperDims) -> Result<(), Error> {
        let (d, enc) = (dims.d_model, "model.encoder");
        self.copy(
            "encoder/conv1/weight",
            format!("{enc}.conv1.weight"),
            &[d, dims.num_mel_bins, 3],
        )?;
        self.copy("encoder/conv1/bias", format!("{enc}.conv1.bias"), &[d])?;
        self.copy(
            "encoder/conv2/weight",
            format!("{enc}.conv2.weight"),
            &[d, d, 3],
        )?;
        self.copy("encoder/conv2/bias", format!("{enc}.conv2.bias"), &[d])?;
        self.copy(
            "encoder/position_encodings/encodings",
            format!("{enc}.embed_positions.weight"),
            &[dims.max_source_positions, d],
        )?;
        self.layer_norm("encoder/layer_norm", &format!("{enc}.layer_norm"), d)?;
        for i in 0..dims.encoder_layers {
            self.common_layer(
                &format!("encoder/layer_{i}"),
                &format!("{enc}.layers.{i}"),
                d,
            )?;
        }
        Ok(())
    }

    /// The decoder: token and position embeddings, the final norm, and its layers, each with
    /// cross-attention over the encoder's output.
    fn decoder(&mut self, dims: &WhisperDims) -> Result<(), Error> {
        let (d, dec) = (dims.d_model, "model.decoder");
        self.copy(
            "decoder/embeddings/weight",
            format!("{dec}.embed_tokens.weight"),
            &[dims.vocab_size, d],
        )?;
        self.copy(
            "decoder/position_encodings/encodings",
            format!("{dec}.embed_positions.weight"),
            &[dims.max_target_positions, d],
        )?;
        self.layer_norm("decoder/layer_norm", &format!("{dec}.layer_norm"), d)?;
        for i in 0..dims.decoder_layers {
            let (from, to) = (format!("decoder/layer_{i}"), format!("{dec}.layers.{i}"));
            self.common_layer(&from, &to, d)?;
            self.cross_attention(&from, &to, d)?;
        }
        Ok(())
    }

    /// A decoder layer's attention over the encoder: q alone, k and v fused (k without bias).
    fn cross_attention(&mut self, from: &str, to: &str, d: usize) -> Result<(), Error> {
        self.linear(
            &format!("{from}/attention/linear_0"),
            &format!("{to}.encoder_attn.q_proj"),
            d,
            d,
        )?;
        self.split(
            &format!("{from}/attention/linear_1"),
            d,
            d,
            &[
                (format!("{to}.encoder_attn.k_proj"), false),
                (format!("{to}.encoder_attn.v_proj"), true),
            ],
        )?;
        self.linear(
            &format!("{from}/attention/linear_2"),
            &format!("{to}.encoder_attn.out_proj"),
            d,
            d,
        )?;
        self.layer_norm(
            &format!("{from}/attention/layer_norm"),
            &format!("{to}.encoder_attn_layer_norm"),
            d,
        )
    }

    /// The output projection must be an alias of the embeddings (tied, as in Hugging Face's
    /// files), which the file written here leaves implicit.
    fn check_tied_projection(&self) -> Result<(), Error> {
        let Some(projection) = self.model.variable("decoder/projection/weight") else {
            return Ok(());
        };
        if projection.data != self.var("decoder/embeddings/weight")?.data {
            return Err(self.error("an untied output projection is not supported"));
        }
        Ok(())
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
    let dims = c.dims()?;
    c.encoder(&dims)?;
    c.decoder(&dims)?;
    c.check_tied_projection()?;
    if let Some(reason) = unmapped_weights(model, c.used) {
        return Err(c.error(reason));
    }
    write_file(&c.out, metadata(&dims, model), out)?;
    Ok(dims)
}

/// Why the mapping is incomplete, if it is. Every float tensor of the file must have found a
/// place: otherwise the layout is not the one this converter knows, and silently dropping
/// weights would give a broken model.
fn unmapped_weights(model: &Ct2Model<'_>, used: usize) -> Option<String> {
    let floats = model
        .variables
        .iter()
        .filter(|v| !v.shape.is_empty() && v.dtype.float().is_some())
        .count();
    if used == floats {
        return None;
    }
    let mut names = String::new();
    for v in model.variables.iter().filter(|v| !v.shape.is_empty()) {
        let _ = write!(names, " {}", v.name);
    }
    Some(format!(
        "{floats} weight variables but {used} were mapped; variables:{names}"
    ))
}

/// The safetensors metadata: the dimensions (read back by [`WhisperDims::from_metadata`]), the
/// tensor format, and where the weights came from.
fn metadata(dims: &WhisperDims, model: &Ct2Model<'_>) -> HashMap<String, String> {
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
    meta
}

fn write_file(
    tensors: &[(String, OutTensor<'_>)],
    meta: HashMap<String, String>,
    out: &Path,
) -> Result<(), Error> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| Error::SpeechModelFile {
        path: out.display().to_string(),
        source: e,
    };
    let tensors: Vec<(&str, &OutTensor<'_>)> =
        tensors.iter().map(|(name, t)| (name.as_str(), t)).collect();
    // The first load converts lazily, and parallel tests (or two modctl runs) may race to do it:
    // each writes its own temporary file and the rename makes one of them the file, whole.
    let tmp = temporary_sibling(out);
    safetensors::serialize_to_file(tensors, Some(meta), &tmp).map_err(|e| failed(Box::new(e)))?;
    readable_by_all(&tmp).map_err(|e| failed(Box::new(e)))?;
    std::fs::rename(&tmp, out).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        failed(Box::new(e))
    })
}

/// The safetensors writer creates its file private (0600), like a temporary file; the model
/// folder is shared like the weights it came from.
#[cfg(unix)]
fn readable_by_all(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn readable_by_all(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// A name in `out`'s folder that no other writer (process or thread) uses at the same time.
fn temporary_sibling(out: &Path) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
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
mod tests {
    use super::*;
    use crate::speech::ct2::tests::tiny_whisper;

    #[test]
    fn metadata_records_the_dimensions_and_the_source() {
        let bytes = tiny_whisper().bytes("WhisperSpec");
        let model = parse(&bytes, "t.bin").expect("parses");
        let c = Converter {
            model: &model,
            path: "t.bin",
            out: Vec::new(),
            used: 0,
        };
        let dims = c.dims().expect("whisper dims");
        let meta = metadata(&dims, &model);
        assert_eq!(WhisperDims::from_metadata(&meta), Ok(dims));
        assert_eq!(meta.get("format").map(String::as_str), Some("pt"));
        assert_eq!(
            meta.get("converted_from").map(String::as_str),
            Some("CTranslate2 WhisperSpec revision 3, binary version 6")
        );
    }

    #[test]
    fn racing_writers_leave_one_whole_file_and_no_temporaries() {
        let bytes = tiny_whisper().bytes("WhisperSpec");
        let model = parse(&bytes, "t.bin").expect("parses");
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("model.safetensors");
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| write_whisper_safetensors(&model, "t.bin", &out).expect("converts"));
            }
        });
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("listable")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["model.safetensors"]);
        let file = std::fs::read(&out).expect("written");
        assert!(safetensors::SafeTensors::deserialize(&file).is_ok());
    }

    #[test]
    fn a_weight_left_unmapped_is_named() {
        let mut w = tiny_whisper();
        w.f16("encoder/extra/weight", &[2], 0.0);
        let bytes = w.bytes("WhisperSpec");
        let model = parse(&bytes, "t.bin").expect("parses");
        let floats = model
            .variables
            .iter()
            .filter(|v| !v.shape.is_empty())
            .count();
        assert_eq!(unmapped_weights(&model, floats), None);
        let reason = unmapped_weights(&model, floats - 1).expect("one short");
        assert!(
            reason.starts_with(&format!(
                "{floats} weight variables but {} were mapped",
                floats - 1
            )) && reason.contains(" encoder/extra/weight"),
            "{reason}"
        );
    }

    #[test]
    fn a_model_with_a_flag_candle_does_not_implement_is_refused() {
        let mut w = tiny_whisper();
        w.i16_scalar("decoder/alibi", 1);
        let bytes = w.bytes("WhisperSpec");
        let model = parse(&bytes, "t.bin").expect("parses");
        let c = Converter {
            model: &model,
            path: "t.bin",
            out: Vec::new(),
            used: 0,
        };
        let err = c.dims().expect_err("alibi");
        assert!(err.to_string().contains("decoder/alibi"), "{err}");
    }
}
