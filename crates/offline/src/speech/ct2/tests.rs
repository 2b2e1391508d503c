//! Synthetic CTranslate2 files: parsing, malformed input, and the Whisper conversion.

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
